"""What a deployment is waiting for, in words an operator can act on.

``describe_wait(state)`` reads the persisted state's pending action (a pause, a bake, a
readiness or weight check, an analysis window, a stage) and says what is awaited, when it
ends by itself (``until``: a pause, a bake, the next measurement), when the engine gives
up on it (``deadline``: readiness, weights, stages, a human gate) and, for a human gate,
what to run. The live progress view and ``pipeline status`` both use it, so they never
disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.state import (
    AwaitReady,
    DeploymentState,
    Hold,
    Measure,
    Phase,
    RunStage,
    VerifyTraffic,
)
from pipeline.core.steps import Pause, format_seconds


@dataclass(frozen=True, slots=True)
class Wait:
    """One wait. Two calls with the same ``key`` describe the same wait (its times may move).
    Times are epoch seconds; None when there is none."""

    key: tuple[str, ...]
    what: str
    until: float | None = None
    deadline: float | None = None
    hint: str = ""
    stage: str = ""  # "test" or "load" while a stage runs


def describe_wait(state: DeploymentState) -> Wait | None:
    """The wait ``state`` is in, or None when its next action does not wait (or it ended)."""
    action = state.pending
    if state.phase.terminal or action is None:
        return None
    key = (state.id, state.phase.value, str(state.step_index), type(action).__name__)
    step = _step_label(state)
    match action:
        case Hold(until=None):
            svc, env = state.ref.service, state.ref.environment
            return Wait(
                key,
                f"{step}waiting for a person",
                deadline=state.deadline,
                hint=f"run `pipeline continue {svc} --env {env}` to go on "
                f"or `pipeline abort {svc} --env {env}` to stop",
            )
        case Hold(until=until):
            return Wait(key, _hold_label(state, step), until)
        case AwaitReady(slot=slot):
            what = f"waiting for {slot} to run {state.release.short}, all replicas healthy"
            return Wait(key, what, deadline=state.deadline)
        case VerifyTraffic(weights=weights):
            return Wait(key, f"verifying traffic: {weights}", deadline=state.deadline)
        case Measure(slot=slot, not_before=next_at):
            window = format_seconds(state.analysis.window_seconds)
            return Wait(key, f"{step}analysing {slot} (window {window}), next measurement", next_at or None)
        case RunStage(stage=stage, slot=slot):
            return Wait(key, f"{step}{stage} stage against {slot}", deadline=state.deadline, stage=stage)
    return None


def _step_label(state: DeploymentState) -> str:
    if state.phase is not Phase.PROGRESSING or state.current_step is None:
        return ""
    return f"step {state.step_index + 1}/{len(state.steps)}: "


def _hold_label(state: DeploymentState, step: str) -> str:
    if state.phase is Phase.DRAINING:
        stable = state.stable.short if state.stable else "the previous release"
        return f"keeping {stable} warm on {state.old_slot} before scaling it down"
    if state.phase is Phase.ROLLING_BACK:
        return f"draining {state.new_slot} before scaling it down"
    current = state.current_step
    if isinstance(current, Pause) and current.seconds:
        return f"{step}pause {format_seconds(current.seconds)}"
    return f"{step}pause"


def duration_text(seconds: float) -> str:
    """``42s``, ``4m05s``, ``2h03m``: whole seconds, two units at most."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
