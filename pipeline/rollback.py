"""Where ``pipeline rollback`` goes, and why, decided before anything changes.

The target is found in the environment's *lineage*: the releases that served, in order,
where a successful deployment pushes its release and a successful rollback returns to
(truncates the lineage at) the release it restored. Rolling back goes to the release
below the one serving now, so rolling back twice goes two releases back, never forward
to the release the first rollback left; a deployment that rolled itself back never
entered the lineage, so rollback after it goes one release further back than what serves.
An unfinished deployment is rolled back to the stable release it started from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.core.errors import NotFoundError
from pipeline.core.model import Release
from pipeline.core.plan import serving as plan_serving
from pipeline.core.ports import Record
from pipeline.core.state import DeploymentState
from pipeline.requirements import SUCCEEDED

ROLLBACK = "rollback"  # the audit action of a rollback (a signal, or a fast redeploy)


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """What serves, what the rollback goes to, and why; ``signal``: the unfinished deployment
    is rolled back by an event to its engine instead of a new deployment of ``target``."""

    serving: Release | None
    target: Release
    reason: str
    signal: bool = False


def lineage(records: Sequence[Record]) -> list[Release]:
    """The releases that served in turn, oldest first (see the module docstring)."""
    # a rollback *deployment* (audited when it was planned, phase pending), not a rollback
    # signal sent to a running deployment (audited in its phase; it may have been rejected)
    rollbacks = {
        r.deployment for r in records if r.kind == "audit" and r.action == ROLLBACK and r.phase == "pending"
    }
    stack: list[Release] = []
    for r in records:
        if r.action != SUCCEEDED or "release" not in r.data:
            continue
        release = Release.from_dict(r.data["release"])
        restored = [i for i, s in enumerate(stack) if s.digest == release.digest]
        if r.deployment in rollbacks and restored:
            del stack[restored[-1] + 1 :]
        else:
            stack.append(release)
    return stack


def plan_rollback(state: DeploymentState, records: Sequence[Record], to: str = "") -> RollbackPlan:
    """The rollback of ``state``'s service and environment; ``to`` names a release (version,
    digest or commit) that must have succeeded there. ``NotFoundError`` when there is none."""
    live = plan_serving(state)[0]
    if not state.phase.terminal and not to:
        stable = state.stable
        if stable is None:
            raise NotFoundError(
                f"no release to roll {state.ref} back to: {state.release.short} is its first deployment",
                hint=f"`pipeline abort {state.ref.service} --env {state.ref.environment}` stops it",
            )
        why = (
            f"the deployment of {state.release.short} is {state.phase.value}: "
            f"traffic returns to {stable.short}"
        )
        return RollbackPlan(stable, stable, why, signal=True)
    if to:
        return _named(state, records, live, to)
    below = lineage(records)
    while below and live is not None and below[-1].digest == live.digest:
        below.pop()
    candidates = [r for r in below if live is None or r.digest != live.digest]
    if not candidates:
        raise NotFoundError(
            f"no release to roll {state.ref} back to: nothing served before "
            f"{live.short if live else 'the current release'}",
            hint=f"`pipeline history {state.ref.service} --env {state.ref.environment}` lists what was "
            "deployed; `--to VERSION` names one",
        )
    return RollbackPlan(live, candidates[-1], _why(state, live, candidates[-1]))


def _why(state: DeploymentState, live: Release | None, target: Release) -> str:
    if live is None:
        return f"nothing is known to serve; {target.short} is the last release that did"
    if state.phase.value != "succeeded":
        return (
            f"the last deployment ({state.release.short}) ended {state.phase.value}, so {live.short} "
            f"serves already; one release further back is {target.short}, which served before it"
        )
    return f"{live.short} serves since its deployment succeeded; {target.short} served before it"


def _named(state: DeploymentState, records: Sequence[Record], live: Release | None, to: str) -> RollbackPlan:
    matches = [
        Release.from_dict(r.data["release"])
        for r in records
        if r.action == SUCCEEDED and "release" in r.data
    ]
    live_digest = live.digest if live else None
    matches = [r for r in matches if to in (r.version, r.digest, r.commit) and r.digest != live_digest]
    if not matches:
        raise NotFoundError(
            f"no release to roll {state.ref} back to: none matching {to!r} succeeded there"
            + (f" (other than {live.short}, which serves)" if live else ""),
            hint=f"`pipeline history {state.ref.service} --env {state.ref.environment}` lists what was "
            "deployed",
        )
    target = matches[-1]
    return RollbackPlan(live, target, f"--to {to}: the newest successful deployment of {target.short} there")
