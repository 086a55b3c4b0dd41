"""The ``pipeline`` console script: the command group, error rendering and exit codes.

Exit codes (see ``pipeline.core.errors``): 0 ok, 1 error, 2 bad config or usage,
3 not found, 4 lock held, 5 promotion refused, 6 deployment failed (rolled back,
aborted or failed), 7 platform error, 8 state conflict, 130 cancelled.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pipeline import __version__
from pipeline.app import App
from pipeline.cli import aws as aws_commands
from pipeline.cli import build as build_commands
from pipeline.cli import changes as changes_commands
from pipeline.cli import demo as demo_commands
from pipeline.cli import deploy as deploy_commands
from pipeline.cli import github as github_commands
from pipeline.cli import keys as keys_commands
from pipeline.cli import loadtest as loadtest_commands
from pipeline.cli import local as local_commands
from pipeline.cli import promote as promote_commands
from pipeline.cli import rollback as rollback_commands
from pipeline.cli import servicetest as servicetest_commands
from pipeline.cli import trace as trace_commands
from pipeline.clock import SystemClock
from pipeline.config.windows import window_warnings
from pipeline.console.render import emit_json, err, out, print_error, styled
from pipeline.core.errors import PipelineError
from pipeline.observe.command import command_trace, name_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Project folder (default: the nearest folder with a pipeline.yaml).",
)
@click.option(
    "--project",
    "project_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="PIPELINE_PROJECT",
    help="Take environments and organisations from this file (e.g. the Ops repository's "
    "pipeline.yaml); services still come from the root's services/ folder.",
)
@click.version_option(__version__, prog_name="pipeline")
@click.pass_context
def cli(ctx: click.Context, root: Path, project_file: Path | None) -> None:
    """Progressive deployments for microservices: local platform and AWS."""
    ctx.obj = App(root_hint=root, project_file=project_file.resolve() if project_file else None)
    name_command(ctx.invoked_subcommand or "")  # the command's span, when spans go to a collector


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the loaded configuration summary as JSON.")
@click.pass_obj
def validate(app: App, as_json: bool) -> None:
    """Check pipeline.yaml and every services/*/service.yaml; report every problem at once."""
    project = app.project
    summary = {
        "root": str(app.root),
        "project_file": str(app.root / project.project_file),
        "services_dir": str(app.root / "services"),
        "environments": sorted(project.config.environments),
        "services": sorted(project.services),
        "warnings": [str(w) for w in window_warnings(project)],
    }
    if as_json:
        emit_json(summary)
        return
    err.print(
        styled(
            "ok",
            "green",
            f": {len(summary['environments'])} environments ({', '.join(summary['environments'])}), "
            f"{len(summary['services'])} services ({', '.join(summary['services'])})",
        )
    )
    if app.project_file is not None:
        used = f"  from {summary['project_file']} and {summary['services_dir']}/"
        err.print(used, markup=False, soft_wrap=True)
    for warning in summary["warnings"]:
        err.print(f"warning: {warning}", markup=False, soft_wrap=True)


@click.command()
def schema() -> None:
    """Print the JSON Schema of pipeline.yaml and service.yaml (for editors)."""
    from pipeline.config import json_schema

    out.print_json(json.dumps(json_schema()))


# Every command, registered the same way: one static list the import contracts can see.
COMMANDS: tuple[click.Command, ...] = (
    validate,
    schema,
    deploy_commands.deploy,
    deploy_commands.status,
    deploy_commands.history,
    deploy_commands.abort,
    deploy_commands.continue_,
    rollback_commands.rollback,
    promote_commands.approve,
    promote_commands.promote,
    local_commands.local,
    loadtest_commands.loadtest,
    build_commands.build,
    build_commands.push,
    aws_commands.bootstrap,
    aws_commands.iam_policy,
    demo_commands.demo,
    changes_commands.changes,
    github_commands.handoff,
    github_commands.approval,
    github_commands.deployment_status,
    servicetest_commands.test,
    trace_commands.trace,
    keys_commands.keys,
)
for _command in COMMANDS:
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; render PipelineErrors without a traceback and exit with their code."""
    try:
        with command_trace(SystemClock()):  # pipeline.observe.command
            cli.main(args=argv, prog_name="pipeline", standalone_mode=False)
    except PipelineError as exc:
        print_error(exc)
        return exc.exit_code
    except click.exceptions.Abort:
        err.print("cancelled")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted: the deployment state is saved; `pipeline deploy --resume` continues it")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
