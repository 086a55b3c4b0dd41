"""Deployment commands: deploy, status, history, abort, continue (rollback and promotion
are in their own modules; they share the options and helpers defined here).

Each body is parse -> wire (``App``) -> ``operations`` -> render.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from pipeline import operations as ops
from pipeline.app import App
from pipeline.cli.completion import complete_environments, complete_services
from pipeline.cli.outputs import github_output_option, write_github_output
from pipeline.console.render import (
    ConsoleSink,
    emit_json,
    err,
    history_table,
    out,
    print_history,
    print_status,
    print_wide,
    record_dict,
    state_summary,
    status_table,
    styled,
)
from pipeline.core.errors import Cancelled, DeploymentFailed, PipelineError, UsageError
from pipeline.core.plan import describe
from pipeline.core.state import DeploymentState, Phase
from pipeline.operations import Context
from pipeline.report.build import write_report
from pipeline.report.watch import watch_environment

env_option = click.option(
    "--env", "env_name", required=True, help="Target environment.", shell_complete=complete_environments
)
service_argument = click.argument("service", shell_complete=complete_services)
wide_option = click.option("--wide", is_flag=True, help="A table, one column per field (for wide terminals).")
yes_option = click.option(
    "--yes", is_flag=True, help="Do not ask before touching another organisation's environment."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print data as JSON on stdout.")
report_option = click.option(
    "--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
    help="Write the deployment's HTML report (rates, errors, p95, weights, verdicts, slowest traces) "
    "to PATH, whatever the outcome.",
)
override_option = click.option(
    "--override-requirements",
    "override",
    is_flag=True,
    help="Break glass: go ahead although the environment's requirements are unmet (members of "
    "the owning organisation only; needs --reason; recorded in the history and the audit).",
)


def context(app: App, env_name: str, override: bool, reason: str) -> Context:
    """The environment's context; with ``override``, a break-glass request by the caller's
    proven identity (checked by ``requirements.authorise`` only if something is unmet)."""
    ctx = app.context(env_name, ConsoleSink())
    if not override:
        return ctx
    if not reason.strip():
        raise UsageError(
            "--override-requirements needs --reason: it is recorded in the history and the audit",
            hint='e.g. --reason "incident 4711: hotfix while staging is down"',
        )
    return replace(ctx, override=app.override(env_name, reason))


def confirm(app: App, service: str, env_name: str, yes: bool, what: str) -> None:
    """Ask (or require --yes) before changing an environment another organisation owns."""
    owner = app.guarded(service, env_name)
    if owner is None or yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"refusing to {what} in {env_name} without confirmation: {env_name} is owned by {owner}",
            hint="pass --yes (in CI, after the environment's approval gate)",
        )
    if not click.confirm(f"{env_name} is owned by {owner}. {what.capitalize()}?", err=True):
        raise Cancelled(f"{what} cancelled: nothing was changed")


def finish(state: DeploymentState | None, as_json: bool, github_output: bool = False) -> None:
    """Print the outcome (and, with ``github_output``, its step outputs); raise
    DeploymentFailed unless the release really serves."""
    if github_output:
        write_github_output(deployment_outputs(state))
    if state is None:
        err.print("signal sent: the running deployment applies it at its next step")
        return
    if as_json:
        emit_json(state_summary(state))
    if state.phase is Phase.SUCCEEDED:
        err.print(styled("succeeded", "bold green", f": {state.release.short} serves 100% of {state.ref}"))
        return
    raise DeploymentFailed(
        f"deployment of {state.release.short} to {state.ref} ended {state.phase.value}: {state.reason}",
        hint=f"`pipeline history {state.ref.service} --env {state.ref.environment}` shows every step",
    )


def reported(ctx: Context, state: DeploymentState | None, path: Path | None) -> DeploymentState | None:
    """``state``, after writing its deployment report to ``path`` (when asked for). A report
    that cannot be written is said on stderr; the deployment's outcome stands either way."""
    if path is not None and state is not None:
        try:
            err.print(f"report: {write_report(ctx, state, path)}", markup=False)
        except (OSError, PipelineError) as exc:
            err.print(f"report not written to {path}: {exc}", markup=False)
    return state


def deployment_outputs(state: DeploymentState | None) -> dict[str, object]:
    """GitHub step outputs of a deployment: phase, deployment id, the release's digest and
    version, succeeded (true only when it serves 100%), and the digest serving now."""
    if state is None:
        return {"phase": "signalled", "deployment": "", "digest": "", "version": "", "succeeded": False,
                "serving": ""}
    live = ops.serving(state)
    return {
        "phase": state.phase.value,
        "deployment": state.id,
        "digest": state.release.digest,
        "version": state.release.version,
        "succeeded": state.phase is Phase.SUCCEEDED,
        "serving": live.digest if live else "",
    }


@click.command()
@service_argument
@env_option
@click.option("--image", help="Image reference with a digest (repo@sha256:...) or a tag.")
@click.option("--ref", "git_ref", help="Git commit, tag or branch to deploy (default HEAD).")
@click.option("--dry-run", is_flag=True, help="Print the plan the engine would run, change nothing.")
@click.option("--resume", "resume_", is_flag=True, help="Continue the persisted deployment after a crash.")
@override_option
@click.option("--reason", default="", help="Why; recorded (required with --override-requirements).")
@yes_option
@report_option
@json_option
@github_output_option
@click.pass_obj
def deploy(
    app: App,
    service: str,
    env_name: str,
    image: str | None,
    git_ref: str | None,
    dry_run: bool,
    resume_: bool,
    override: bool,
    reason: str,
    yes: bool,
    as_json: bool,
    github_output: bool,
    report_path: Path | None = None,
) -> None:
    """Deploy SERVICE to an environment progressively (or --resume, or --dry-run).

    The environment's requirements (`requires:`) must hold for the release, as for
    `promote`. GitHub outputs: phase, deployment, digest, version, succeeded, serving.
    """
    ref = app.ref(service, env_name)
    if not dry_run:
        app.writable(env_name, "deploy to")
    ctx = context(app, env_name, override, reason)
    if resume_:
        confirm(app, service, env_name, yes, "resume a deployment")
        finish(reported(ctx, ops.resume(ctx, ref), report_path), as_json, github_output)
        return
    release = app.release(service, env_name, image, git_ref)
    if dry_run:
        plan = ops.plan(ctx, ref, release, app.strategy(service, env_name))
        refused = ops.refusal_of(ctx, ref, release)
        lines = describe(plan) + ([f"refused (exit 5): {refused.message}"] if refused else [])
        if as_json:
            why = refused.message if refused else ""
            emit_json({**state_summary(plan), "plan": describe(plan), "refused": why})
        else:
            out.print("\n".join(lines), markup=False)
        return
    ops.admit_release(ctx, ref, release)  # refused before asking: nothing changes
    confirm(app, service, env_name, yes, f"deploy {release.short}")
    state = ops.deploy(ctx, ref, release, app.strategy(service, env_name), reason=reason)
    finish(reported(ctx, state, report_path), as_json, github_output)


@click.command()
@click.argument("service", required=False, shell_complete=complete_services)
@click.option("--env", "env_name", help="Only this environment.", shell_complete=complete_environments)
@wide_option
@json_option
@click.option("--watch", "watching", is_flag=True,
              help="Live view of --env: every service's weights, slot health and traffic, until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=1.0), default=5.0, show_default=True,
              help="Seconds between refreshes (--watch).")
@click.option("--count", type=click.IntRange(min=0), default=0,
              help="Stop after this many refreshes (--watch; 0: until Ctrl-C).")
@click.pass_obj
def status(app: App, service: str | None, env_name: str | None, wide: bool, as_json: bool,
           watching: bool = False, interval: float = 5.0, count: int = 0) -> None:
    """Show the latest deployment of each service in each environment.

    One line per deployment (phase, release and digest prefix, weights, step, time of the
    last change), then what it waits for and its reason, wrapped: nothing is cut at any width.
    With --watch --env ENV: a live table of ENV's services, redrawn every --interval seconds
    (not on a terminal: one table per interval).
    """
    if watching:
        if env_name is None or as_json:
            raise UsageError("status --watch shows one environment as a table: it needs --env and no --json",
                             hint="e.g. `pipeline status --watch --env staging`")
        refs = [app.ref(s, env_name) for s in ([service] if service else sorted(app.project.services))]
        watch_environment(app.context(env_name, ConsoleSink()), refs, out, interval=interval, count=count)
        return
    states: list[DeploymentState] = []
    envs = [env_name] if env_name else list(app.project.config.environments)
    services = [service] if service else sorted(app.project.services)
    for name in envs:
        env = app.environment(name)
        if env_name is None and str(env.platform) != "local":
            continue  # remote environments only when asked for by name
        store, _locks = app.factory(env).stores(env)
        for svc in services:
            state = store.load(app.ref(svc, name))
            if state is not None:
                states.append(state)
    if as_json:
        emit_json([state_summary(s) for s in states])
    elif states and wide:
        print_wide(status_table(states))
    elif states:
        print_status(states)
    else:
        err.print("no deployments yet")


@click.command()
@service_argument
@env_option
@click.option("--limit", default=200, show_default=True, help="How many records.")
@wide_option
@json_option
@click.pass_obj
def history(app: App, service: str, env_name: str, limit: int, wide: bool, as_json: bool) -> None:
    """Show the history and audit records of SERVICE in an environment, oldest first.

    One line per event (time in UTC, actor, action, release), then its reason wrapped.
    """
    records = app.store(env_name).history(app.ref(service, env_name), limit)
    if as_json:
        emit_json([record_dict(r) for r in records])
    elif wide:
        print_wide(history_table(records))
    else:
        print_history(records)


@click.command()
@service_argument
@env_option
@click.option("--reason", default="aborted by operator", help="Why; recorded in the history.")
@yes_option
@click.pass_obj
def abort(app: App, service: str, env_name: str, reason: str, yes: bool) -> None:
    """Stop a deployment: traffic back to the stable release, verified, new slot scaled down."""
    app.writable(env_name, "abort a deployment in")
    confirm(app, service, env_name, yes, "abort the deployment")
    state = ops.abort(app.context(env_name, ConsoleSink()), app.ref(service, env_name), reason)
    if state is not None and state.phase is Phase.ABORTED:
        serving = state.stable.short if state.stable else "nothing"
        err.print(styled("aborted", "yellow", f": {serving} serves {state.ref}"))
        return
    finish(state, False)


@click.command(name="continue")
@service_argument
@env_option
@click.option("--full", is_flag=True, help="Skip every remaining step and promote.")
@override_option
@click.option("--reason", default="", help="Why (required with --override-requirements).")
@yes_option
@click.pass_obj
def continue_(
    app: App, service: str, env_name: str, full: bool, override: bool, reason: str, yes: bool
) -> None:
    """End the current pause now (or, with --full, skip the remaining steps)."""
    app.writable(env_name, "continue a deployment in")
    confirm(app, service, env_name, yes, "continue the deployment")
    ctx = context(app, env_name, override, reason)
    finish(ops.resume_paused(ctx, app.ref(service, env_name), full=full), False)
