"""Deployment commands: deploy, status, history, abort, continue, rollback, approve, promote.

Each body is parse -> wire (``App``) -> ``operations`` -> render.
"""

from __future__ import annotations

import sys

import click

from pipeline import operations as ops
from pipeline import promotion
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
)
from pipeline.core.errors import Cancelled, DeploymentFailed, PromotionRefused, UsageError
from pipeline.core.plan import describe
from pipeline.core.state import DeploymentState, Phase

env_option = click.option(
    "--env", "env_name", required=True, help="Target environment.", shell_complete=complete_environments
)
service_argument = click.argument("service", shell_complete=complete_services)
wide_option = click.option("--wide", is_flag=True, help="A table, one column per field (for wide terminals).")
yes_option = click.option(
    "--yes", is_flag=True, help="Do not ask before touching another organisation's environment."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print data as JSON on stdout.")


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
        err.print(f"[bold green]succeeded[/]: {state.release.short} serves 100% of {state.ref}")
        return
    raise DeploymentFailed(
        f"deployment of {state.release.short} to {state.ref} ended {state.phase.value}: {state.reason}",
        hint=f"`pipeline history {state.ref.service} --env {state.ref.environment}` shows every step",
    )


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
@yes_option
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
    yes: bool,
    as_json: bool,
    github_output: bool,
) -> None:
    """Deploy SERVICE to an environment progressively (or --resume, or --dry-run).

    GitHub outputs: phase, deployment, digest, version, succeeded, serving.
    """
    ref = app.ref(service, env_name)
    if not dry_run:
        app.writable(env_name, "deploy to")
    ctx = app.context(env_name, ConsoleSink())
    if resume_:
        confirm(app, service, env_name, yes, "resume a deployment")
        finish(ops.resume(ctx, ref), as_json, github_output)
        return
    release = app.release(service, env_name, image, git_ref)
    if dry_run:
        plan = ops.plan(ctx, ref, release, app.strategy(service, env_name))
        if as_json:
            emit_json({**state_summary(plan), "plan": describe(plan)})
        else:
            out.print("\n".join(describe(plan)))
        return
    confirm(app, service, env_name, yes, f"deploy {release.short}")
    finish(ops.deploy(ctx, ref, release, app.strategy(service, env_name)), as_json, github_output)


@click.command()
@click.argument("service", required=False, shell_complete=complete_services)
@click.option("--env", "env_name", help="Only this environment.", shell_complete=complete_environments)
@wide_option
@json_option
@click.pass_obj
def status(app: App, service: str | None, env_name: str | None, wide: bool, as_json: bool) -> None:
    """Show the latest deployment of each service in each environment.

    One line per deployment (phase, release and digest prefix, weights, step, time of the
    last change), then what it waits for and its reason, wrapped: nothing is cut at any width.
    """
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
        err.print(
            f"[yellow]aborted[/]: {state.stable.short if state.stable else 'nothing'} serves {state.ref}"
        )
        return
    finish(state, False)


@click.command(name="continue")
@service_argument
@env_option
@click.option("--full", is_flag=True, help="Skip every remaining step and promote.")
@yes_option
@click.pass_obj
def continue_(app: App, service: str, env_name: str, full: bool, yes: bool) -> None:
    """End the current pause now (or, with --full, skip the remaining steps)."""
    app.writable(env_name, "continue a deployment in")
    confirm(app, service, env_name, yes, "continue the deployment")
    ctx = app.context(env_name, ConsoleSink())
    finish(ops.resume_paused(ctx, app.ref(service, env_name), full=full), False)


@click.command()
@service_argument
@env_option
@click.option("--to", "to", default="", help="Version, commit or digest (default: last good release).")
@click.option("--reason", default="", help="Why; recorded in the history.")
@yes_option
@json_option
@github_output_option
@click.pass_obj
def rollback(
    app: App,
    service: str,
    env_name: str,
    to: str,
    reason: str,
    yes: bool,
    as_json: bool,
    github_output: bool,
) -> None:
    """Return SERVICE to the last successfully deployed release.

    GitHub outputs: as deploy's; ``serving`` is the digest serving after the rollback.
    """
    app.writable(env_name, "roll back")
    confirm(app, service, env_name, yes, "roll back")
    ctx = app.context(env_name, ConsoleSink())
    strategy = app.strategy(service, env_name)
    state = ops.rollback(ctx, app.ref(service, env_name), strategy, to=to, reason=reason)
    if state is not None and state.phase is Phase.ROLLED_BACK:
        if github_output:
            write_github_output(deployment_outputs(state))
        err.print(f"[yellow]rolled back[/]: {state.stable.short if state.stable else '-'} serves {state.ref}")
        if as_json:
            emit_json(state_summary(state))
        return
    finish(state, as_json, github_output)


@click.command()
@service_argument
@env_option
@click.option(
    "--release", "which", default="", help="Version, commit or digest (default: what the source serves)."
)
@click.pass_obj
def approve(app: App, service: str, env_name: str, which: str) -> None:
    """Record your approval of a release for an environment that requires one."""
    app.writable(env_name, "approve a release for")
    req = app.requirements(env_name)
    if not req.approval:
        raise UsageError(
            f"{env_name} does not require an approval", hint="`pipeline promote` needs none there"
        )
    if req.verified:
        raise UsageError(
            f"approvals for {env_name} come from GitHub: organisations.{req.approval}.github is set",
            hint="approve the promotion pull request on GitHub; `pipeline approval github-pr` records it",
        )
    if req.approvers is not None and app.actor not in req.approvers:
        raise PromotionRefused(
            f"{app.actor} cannot approve for {env_name}: not a member of {req.approval}",
            hint=f"ask a member of {req.approval}: {', '.join(sorted(req.approvers))}",
        )
    if not req.passed and not which:
        raise UsageError("which release? pass --release VERSION", hint="`pipeline history` lists releases")
    source = req.passed[-1] if req.passed else env_name
    ctx = app.context(env_name, ConsoleSink())
    release = promotion.promotable(ctx, service, source)
    if which and which not in (release.version, release.digest, release.commit):
        release = app.release(service, source, None, which)
    promotion.approve(ctx, app.ref(service, env_name), release, req.approval)
    err.print(
        f"[green]approved[/] {release.short} of {service} for {env_name} as {app.actor} ({req.approval})"
    )


@click.command()
@service_argument
@click.option(
    "--from",
    "source",
    required=True,
    help="Environment the release passed.",
    shell_complete=complete_environments,
)
@click.option(
    "--to", "target", required=True, help="Environment to deploy it to.", shell_complete=complete_environments
)
@click.option(
    "--release",
    "digest",
    default="",
    metavar="DIGEST",
    help="Exactly this release (sha256:... or repo@sha256:...), which must have succeeded in --from.",
)
@yes_option
@json_option
@github_output_option
@click.pass_obj
def promote(
    app: App,
    service: str,
    source: str,
    target: str,
    digest: str,
    yes: bool,
    as_json: bool,
    github_output: bool,
) -> None:
    """Deploy the same image digest that passed --from into --to, if its requirements hold.

    Without --release, the release --from serves now. GitHub outputs: as deploy's.
    """
    app.writable(target, "promote into")
    app.ref(service, source)
    ctx = app.context(target, ConsoleSink())
    release = promotion.promotable(ctx, service, source, digest)
    promotion.require(ctx, app.ref(service, target), release, app.requirements(target))
    confirm(app, service, target, yes, f"promote {release.short}")
    state = promotion.promote(
        ctx, service, source, target, app.strategy(service, target), app.requirements(target), digest=digest
    )
    finish(state, as_json, github_output)
