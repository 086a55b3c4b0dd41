"""``pipeline rollback``: states what serves, where it goes and why, then asks.

parse -> wire (``App``) -> ``operations.rollback_plan`` -> ask -> ``operations.rollback`` -> render.
"""

from __future__ import annotations

import sys

import click
from rich.text import Text

from pipeline import operations as ops
from pipeline.app import App
from pipeline.cli.deploy import (
    context,
    deployment_outputs,
    env_option,
    finish,
    json_option,
    override_option,
    service_argument,
    yes_option,
)
from pipeline.cli.outputs import github_output_option, write_github_output
from pipeline.console.render import emit_json, err, state_summary
from pipeline.core.errors import Cancelled, UsageError
from pipeline.core.state import Phase
from pipeline.rollback import RollbackPlan


@click.command()
@service_argument
@env_option
@click.option("--to", "to", default="", help="Version, commit or digest (default: what served before).")
@click.option("--reason", default="", help="Why; recorded in the history.")
@override_option
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
    override: bool,
    yes: bool,
    as_json: bool,
    github_output: bool,
) -> None:
    """Return SERVICE to the release that served before the one serving now.

    First states what serves, the target and why, then asks (or takes --yes). After a
    deployment that rolled itself back, that is one release further back than what serves.
    The target must meet the environment's requirements. GitHub outputs: as deploy's;
    ``serving`` is the digest serving after the rollback.
    """
    app.writable(env_name, "roll back")
    ref = app.ref(service, env_name)
    ctx = context(app, env_name, override, reason)
    planned = ops.rollback_plan(ctx, ref, to)
    if not planned.signal:
        ops.admit_release(ctx, ref, planned.target)
    ask_rollback(planned, env_name, yes)
    state = ops.rollback(ctx, ref, app.strategy(service, env_name), reason=reason, planned=planned)
    if state is not None and state.phase is Phase.ROLLED_BACK:
        if github_output:
            write_github_output(deployment_outputs(state))
        serving = state.stable.short if state.stable else "-"
        err.print(Text.assemble(("rolled back", "yellow"), f": {serving} serves {state.ref}"))
        if as_json:
            emit_json(state_summary(state))
        return
    finish(state, as_json, github_output)


def ask_rollback(planned: RollbackPlan, env_name: str, yes: bool) -> None:
    """State what serves, the target and why; then go ahead only with --yes or a "yes"."""
    serving = planned.serving.short if planned.serving else "unknown"
    for label, text in (
        ("serving:", serving),
        ("rolling back to:", f"{planned.target.short}, digest {planned.target.digest}"),
        ("why:", planned.reason),
    ):
        err.print(f"{label:<17} {text}", markup=False, highlight=False, soft_wrap=True)
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"refusing to roll back {env_name} without confirmation",
            hint="pass --yes (in CI, after checking the target above)",
        )
    if not click.confirm(f"Roll back {env_name} to {planned.target.short}?", err=True):
        raise Cancelled("rollback cancelled: nothing was changed")
