"""Plan a deployment: the initial ``DeploymentState`` and its human-readable plan.

``--dry-run`` prints ``describe()`` of exactly the state the engine would then run.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.analysis import AnalysisSpec
from pipeline.core.model import Release, ServiceRef, Slot
from pipeline.core.state import DeploymentState, Timeouts
from pipeline.core.steps import LoadStage, Step, TestStage, format_seconds
from pipeline.core.steps import describe as describe_step


@dataclass(frozen=True, slots=True)
class Strategy:
    """A service's deployment settings, already expanded to steps."""

    steps: tuple[Step, ...]
    analysis: AnalysisSpec = AnalysisSpec()
    timeouts: Timeouts = Timeouts()
    keep_previous: float = 0.0
    drain_seconds: float = 0.0  # e.g. the ALB weights settling before a slot scales down


def new_deployment(
    *,
    deployment_id: str,
    ref: ServiceRef,
    release: Release,
    previous: DeploymentState | None,
    strategy: Strategy,
    actor: str,
    now: float,
    fast: bool = False,
) -> DeploymentState:
    """The state of a deployment of ``release`` that has not started yet.

    The new release goes to the slot the previous deployment is not serving from. With no
    stable release there is nothing to compare with or fall back to, so only the test and
    load stages run before 100%. ``fast`` (rollbacks) skips every step: straight to 100%.
    """
    stable, live_slot = serving(previous)
    steps = strategy.steps
    if fast:
        steps = ()
    elif stable is None:
        steps = tuple(s for s in steps if isinstance(s, TestStage | LoadStage))
    new_slot = live_slot.other() if live_slot else Slot.BLUE
    return DeploymentState(
        id=deployment_id,
        ref=ref,
        release=release,
        stable=stable,
        new_slot=new_slot,
        steps=steps,
        analysis=strategy.analysis,
        timeouts=strategy.timeouts,
        keep_previous=strategy.keep_previous,
        drain_seconds=strategy.drain_seconds,
        actor=actor,
        created_at=now,
        updated_at=now,
    )


def serving(previous: DeploymentState | None) -> tuple[Release | None, Slot | None]:
    """The release serving now and its slot, judged from the last deployment's end."""
    if previous is None:
        return None, None
    if previous.phase.value == "succeeded":
        return previous.release, previous.new_slot
    if previous.stable is not None:
        return previous.stable, previous.old_slot
    return None, None


def describe(state: DeploymentState) -> list[str]:
    """The plan, one line per step, as ``pipeline deploy --dry-run`` prints it."""
    s = state
    lines = [
        f"deploy {s.release.short} of {s.ref.service} to {s.ref.environment}",
        f"image {s.release.image or s.release.digest} (commit {s.release.commit[:12]})",
    ]
    if s.stable:
        lines.append(f"stable: {s.stable.short} on {s.old_slot}; new release goes to {s.new_slot}")
    else:
        lines.append(f"no stable release: first deployment goes to {s.new_slot}, steps reduced to stages")
    lines.append(f"1. bring up {s.new_slot}; wait until ready (deadline {format_seconds(s.timeouts.ready)})")
    for i, step in enumerate(s.steps, start=2):
        lines.append(f"{i}. {describe_step(step)}")
    n = len(s.steps) + 2
    lines.append(f"{n}. set 100% to {s.new_slot} and verify (deadline {format_seconds(s.timeouts.verify)})")
    if s.stable:
        wait = max(s.keep_previous, s.drain_seconds)
        keep = f"after {format_seconds(wait)}" if wait else "at once"
        lines.append(f"{n + 1}. scale {s.old_slot} ({s.stable.short}) down {keep}")
    a = s.analysis
    checks = ", ".join(f"{c.metric} <= {c.max:g}" for c in a.checks)
    lines.append(
        f"analysis: {checks}; min {a.min_requests} requests; window {format_seconds(a.window_seconds)}; "
        f"limits failure {a.failure_limit}, inconclusive {a.inconclusive_limit}, "
        f"errors {a.consecutive_error_limit}"
    )
    traffic = (
        f"synthetic traffic {a.synthetic_rate:g}/s through the main route during analysis windows"
        if a.synthetic_rate > 0
        else "real traffic only"
    )
    lines.append(f"evidence: {traffic}; inconclusive beyond the limit: {a.on_inconclusive}")
    lines.append("on failure: 100% back to the stable slot, verified, then the new slot scaled down")
    return lines
