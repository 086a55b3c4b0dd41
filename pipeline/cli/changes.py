"""``pipeline changes``: which services a push changed (for the push pipeline's matrix).

With ``--base``/``--head`` the services come from the git diff (see ``pipeline.changes``);
with ``--select`` (a manual dispatch's input) they are exactly the named ones, each checked
against the project's services, so a crafted name never reaches a later step.
"""

from __future__ import annotations

import click

from pipeline.app import App
from pipeline.changes import Changes, detect, select
from pipeline.cli.outputs import github_output_option, write_github_output
from pipeline.console.render import emit_json, err
from pipeline.core.errors import UsageError


@click.command()
@click.option("--base", help="The commit before the push (all zeros: everything changed).")
@click.option("--head", default="HEAD", show_default=True, help="The pushed commit.")
@click.option(
    "--select",
    "selected",
    metavar="NAMES",
    help="Exactly these services (separated by spaces or commas), e.g. a manual dispatch's input.",
)
@github_output_option
@click.pass_obj
def changes(app: App, base: str | None, head: str, selected: str | None, github_output: bool) -> None:
    """List the services changed between two commits (or selected by name), as JSON on stdout.

    GitHub outputs: services (a JSON list) and any (true|false).
    """
    project = app.project
    if selected is not None:
        result = Changes("", head, (), select(selected, project.services), reason="selected by name")
    elif base is None:
        raise UsageError("pass --base SHA (the commit before the push) or --select NAMES")
    else:
        paths = {name: tuple(svc.paths) for name, svc in project.services.items()}
        result = detect(app.root, base, head, paths, tuple(project.config.shared_paths))
    emit_json(
        {
            "base": result.base,
            "head": result.head,
            "services": list(result.services),
            "files": list(result.files),
            "everything": result.everything,
            "reason": result.reason,
        }
    )
    why = f" ({result.reason})" if result.reason else ""
    err.print(
        f"{len(result.services)} service(s): {', '.join(result.services) or 'none'}{why}",
        markup=False,
        soft_wrap=True,
    )
    if github_output:
        write_github_output({"services": list(result.services), "any": bool(result.services)})
