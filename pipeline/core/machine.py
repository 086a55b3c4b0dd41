"""The deployment lifecycle: one pure ``transition()`` and its table of legal moves.

``transition(state, event)`` returns the next state (whose ``pending`` field is the one
action the engine must run next, or None when the deployment is over or waiting for
nothing) and the history notes the move produced. Any (phase, event) pair not in
``TABLE`` is illegal and raises ``StateConflict``.

Safety invariants kept here, not in adapters:

- traffic reaches the new slot only after it is ready and its test stage passed;
- the old slot is scaled down only after 100% on the new slot was *verified*;
- every failure path sets 100% back to the old slot and verifies it before the new slot
  is scaled down; if that cannot be verified the deployment ends FAILED and nothing is
  scaled down.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pipeline.core.analysis import Outcome, analysis_window, assess
from pipeline.core.errors import StateConflict
from pipeline.core.evidence import evidence_due
from pipeline.core.model import Slot, Weights
from pipeline.core.state import (
    AbortRequested,
    AwaitReady,
    ContinueRequested,
    DeploymentState,
    Event,
    HealthObserved,
    Hold,
    Measure,
    Measured,
    Phase,
    Provision,
    Provisioned,
    RollbackRequested,
    RunStage,
    ScaledDown,
    ScaleDown,
    SetTraffic,
    StageFinished,
    Start,
    Tick,
    TrafficObserved,
    TrafficSet,
    VerifyTraffic,
)
from pipeline.core.steps import Analyze, Approve, LoadStage, Pause, SetWeight, TestStage, format_seconds

Notes = tuple[str, ...]
Result = tuple[DeploymentState, Notes]
Handler = Callable[[DeploymentState, Any], Result]


def transition(state: DeploymentState, event: Event) -> Result:
    """Apply ``event`` to ``state``; raise ``StateConflict`` for an illegal move."""
    handler = TABLE.get((state.phase, type(event)))
    if handler is None:
        raise StateConflict(
            f"cannot apply {type(event).__name__} to {state.ref}: deployment {state.id} "
            f"is {state.phase.value}",
            hint="`pipeline status` shows the deployment's phase and what it waits for",
        )
    new, notes = handler(state, event)
    return new.evolve(updated_at=event.now), notes


# --- starting ----------------------------------------------------------------------


def _start(s: DeploymentState, e: Start) -> Result:
    stable = f"stable {s.stable.short} on {s.old_slot}" if s.stable else "no stable release"
    note = f"deploying {s.release.short} to {s.new_slot} ({stable})"
    return s.evolve(phase=Phase.STARTING, pending=Provision(s.new_slot)), (note,)


def _provisioned(s: DeploymentState, e: Provisioned) -> Result:
    deadline = e.now + s.timeouts.ready
    refs = {**s.slot_refs, s.new_slot.value: e.reference} if e.reference else s.slot_refs
    return s.evolve(pending=AwaitReady(s.new_slot), deadline=deadline, slot_refs=refs), (
        f"{s.new_slot} provisioned with {s.release.short}",
    )


def _health(s: DeploymentState, e: HealthObserved) -> Result:
    if e.ready:
        state, notes = _enter_step(s.evolve(phase=Phase.PROGRESSING), 0, e.now)
        return state, (f"{s.new_slot} ready: {e.detail}", *notes)
    if s.deadline is not None and e.now >= s.deadline:
        why = f"{s.new_slot} never became ready within {format_seconds(s.timeouts.ready)}: {e.detail}"
        return _rollback(s, e.now, why)
    return s.evolve(pending=AwaitReady(s.new_slot, not_before=e.now + s.timeouts.poll)), ()


# --- the strategy's steps ---------------------------------------------------------


def _enter_step(s: DeploymentState, index: int, now: float) -> Result:
    s = s.evolve(step_index=index, deadline=None)
    step = s.current_step
    match step:
        case None:
            return _promote(s, now)
        case SetWeight(percent=p):
            return s.evolve(pending=SetTraffic(Weights.split(s.new_slot, p))), ()
        case Pause(seconds=None) | Approve():
            return s.evolve(pending=Hold(None), deadline=now + s.timeouts.hold), (
                f"step {index + 1}: waiting for `pipeline continue`",
            )
        case Pause(seconds=sec):
            return s.evolve(pending=Hold(now + (sec or 0.0)), deadline=None), ()
        case Analyze():
            return s.evolve(pending=_measure(s, now)), ()
        case TestStage():
            return _stage(s, "test", now)
        case LoadStage():
            return _stage(s, "load", now)
    raise AssertionError(step)  # pragma: no cover - exhaustive


def _stage(s: DeploymentState, stage: str, now: float) -> Result:
    return s.evolve(pending=RunStage(stage, s.new_slot), deadline=now + s.timeouts.stage), ()


def _measure(s: DeploymentState, now: float, after: float = 0.0) -> Measure:
    """Measure the new slot over the analysis window at ``now``, once its data is complete."""
    w = analysis_window(s.analysis, s.measure_from, now, after)
    return Measure(s.new_slot, since=w.since, not_before=w.ready_at if w.until else 0.0, until=w.until)


def _next_step(s: DeploymentState, now: float) -> Result:
    return _enter_step(s, s.step_index + 1, now)


def _traffic_set(s: DeploymentState, e: TrafficSet) -> Result:
    assert isinstance(s.pending, SetTraffic)
    return s.evolve(pending=VerifyTraffic(s.pending.weights), deadline=e.now + s.timeouts.verify), ()


def _traffic_observed(s: DeploymentState, e: TrafficObserved) -> Result:
    assert isinstance(s.pending, VerifyTraffic)
    wanted = s.pending.weights
    if e.observed == wanted:
        verified = s.evolve(weights=wanted, measure_from=e.now, deadline=None)
        note = f"traffic verified: {wanted}"
        if s.phase is Phase.PROMOTING:
            state, notes = _promoted(verified, e.now)
        elif s.phase is Phase.ROLLING_BACK:
            state, notes = _drain(verified, e.now, s.new_slot)
        else:
            state, notes = _next_step(verified, e.now)
        return state, (note, *notes)
    if s.deadline is not None and e.now >= s.deadline:
        why = (
            f"traffic not verified within {format_seconds(s.timeouts.verify)}: "
            f"wanted {wanted}, the router reports {e.observed or 'nothing'}"
        )
        if s.phase is Phase.ROLLING_BACK:
            return _fail(s, why + "; nothing was scaled down, check the router by hand")
        return _rollback(s, e.now, why)
    return s.evolve(pending=VerifyTraffic(wanted, not_before=e.now + s.timeouts.poll)), ()


def _tick(s: DeploymentState, e: Tick) -> Result:
    assert isinstance(s.pending, Hold)
    until = s.pending.until
    if until is not None and e.now >= until:
        if s.phase is Phase.DRAINING:
            return s.evolve(pending=ScaleDown(s.old_slot)), ()
        if s.phase is Phase.ROLLING_BACK:
            return s.evolve(pending=ScaleDown(s.new_slot)), ()
        return _next_step(s, e.now)
    if s.deadline is not None and e.now >= s.deadline:
        why = f"nobody continued within {format_seconds(s.timeouts.hold)}"
        return _rollback(s, e.now, why)
    return s, ()


def _continue(s: DeploymentState, e: ContinueRequested) -> Result:
    if e.full:
        state, notes = _promote(s, e.now)
        return state, (f"{e.actor} skipped the remaining steps (continue --full)", *notes)
    if isinstance(s.pending, Hold):
        if isinstance(s.current_step, Analyze):  # a paused inconclusive analysis, accepted
            s = s.evolve(counters=replace(s.counters, inconclusives=0), reason="")
        state, notes = _next_step(s, e.now)
        return state, (f"{e.actor} continued step {s.step_index + 1}", *notes)
    raise StateConflict(
        f"nothing to continue: {s.ref} is not paused (step {s.step_index + 1} is running)",
        hint="use `pipeline continue --full` to skip the remaining steps",
    )


def _stage_finished(s: DeploymentState, e: StageFinished) -> Result:
    assert isinstance(s.pending, RunStage)
    label = f"{s.pending.stage} stage"
    if e.result.passed:
        state, notes = _next_step(s, e.now)
        return state, (f"{label} passed: {e.result.summary}", *notes)
    return _rollback(s, e.now, f"{label} failed: {e.result.summary}")


def _measured(s: DeploymentState, e: Measured) -> Result:
    assert isinstance(s.pending, Measure)
    spec, c = s.analysis, s.counters
    retry = _measure_again(s, e.now, e.now + spec.interval_seconds)
    if e.canary is None:
        c = replace(c, consecutive_errors=c.consecutive_errors + 1)
        note = f"analysis error ({c.consecutive_errors}/{spec.consecutive_error_limit}): {e.error}"
        if c.consecutive_errors > spec.consecutive_error_limit:
            return _rollback(s.evolve(counters=c), e.now, f"analysis kept failing: {e.error}")
        return retry.evolve(counters=c), (note,)
    verdict = assess(spec, e.canary, e.baseline)
    c = replace(c, consecutive_errors=0)
    if verdict.outcome is Outcome.SUCCESSFUL:
        state, notes = _next_step(s.evolve(counters=c), e.now)
        return state, (f"analysis successful: {verdict.reason}", *notes)
    if verdict.outcome is Outcome.FAILED:
        c = replace(c, failures=c.failures + 1)
        if c.failures > spec.failure_limit:
            return _rollback(s.evolve(counters=c), e.now, f"analysis failed: {verdict.reason}")
        return retry.evolve(counters=c), (
            f"analysis failed ({c.failures}/{spec.failure_limit} allowed): {verdict.reason}",
        )
    due = evidence_due(s)
    if verdict.starved and due is not None and e.now < due:
        wait = format_seconds(math.ceil(due - e.now))
        note = f"synthetic traffic needs {wait} more for enough evidence: {verdict.reason}"
        return _measure_again(s.evolve(counters=c), e.now, due), (note,)
    c = replace(c, inconclusives=c.inconclusives + 1)
    return _inconclusive(s.evolve(counters=c), e.now, verdict.reason)


def _measure_again(s: DeploymentState, now: float, at: float) -> DeploymentState:
    """Measure again at ``at``; a periodic source's next window ends after the last one."""
    if not s.analysis.period_seconds:
        return s.evolve(pending=Measure(s.new_slot, since=_measure(s, now).since, not_before=at))
    after = s.pending.until if isinstance(s.pending, Measure) else 0.0
    again = _measure(s, at, after)
    return s.evolve(pending=replace(again, not_before=max(at, again.not_before)))


def _inconclusive(s: DeploymentState, now: float, reason: str) -> Result:
    """Count one inconclusive verdict; past the limit, do what ``on_inconclusive`` says."""
    spec, n = s.analysis, s.counters.inconclusives
    if n <= spec.inconclusive_limit:
        note = f"analysis inconclusive ({n}/{spec.inconclusive_limit} allowed): {reason}"
        return _measure_again(s, now, now + spec.interval_seconds), (note,)
    why = f"analysis inconclusive {n} times: {reason}"
    if spec.on_inconclusive == "promote":
        state, notes = _next_step(s, now)
        return state, (f"{why}; on_inconclusive is promote: step {s.step_index + 1} accepted", *notes)
    if spec.on_inconclusive == "pause":
        return _pause_for_decision(s, now, why)
    return _rollback(s, now, why)


def _pause_for_decision(s: DeploymentState, now: float, why: str) -> Result:
    """Wait (up to ``timeouts.hold``) for a person to accept the step or to abort."""
    where = f"{s.ref.service} --env {s.ref.environment}"
    waiting = (
        f"waiting for a decision: {why}. Run `pipeline continue {where}` to accept step "
        f"{s.step_index + 1} and go on, or `pipeline abort {where}` to roll back"
    )
    state = s.evolve(pending=Hold(None), deadline=now + s.timeouts.hold, reason=waiting)
    hold = format_seconds(s.timeouts.hold)
    return state, (f"{waiting} (on_inconclusive is pause; rolls back if nobody decides within {hold})",)


# --- the end: promote or roll back --------------------------------------------------


def _promote(s: DeploymentState, now: float) -> Result:
    target = Weights.all_to(s.new_slot)
    s = s.evolve(phase=Phase.PROMOTING, step_index=len(s.steps), deadline=None)
    if s.weights == target:
        return _promoted(s, now)
    return s.evolve(pending=SetTraffic(target)), ()


def _promoted(s: DeploymentState, now: float) -> Result:
    note = f"{s.release.short} is serving 100% on {s.new_slot}"
    if s.stable is None:
        return s.evolve(phase=Phase.SUCCEEDED, pending=None, reason="promoted"), (note,)
    draining = s.evolve(phase=Phase.DRAINING, reason="promoted")
    wait = max(s.keep_previous, s.drain_seconds)
    if wait > 0:
        keep = f"keeping {s.stable.short} warm on {s.old_slot} for {format_seconds(wait)}"
        return draining.evolve(pending=Hold(now + wait)), (note, keep)
    return draining.evolve(pending=ScaleDown(s.old_slot)), (note,)


def _drain(s: DeploymentState, now: float, slot: Slot) -> Result:
    """Scale ``slot`` down once its in-flight requests had ``drain_seconds`` to finish."""
    if s.drain_seconds > 0:
        return s.evolve(pending=Hold(now + s.drain_seconds)), (
            f"draining {slot} for {format_seconds(s.drain_seconds)} before scaling it down",
        )
    return s.evolve(pending=ScaleDown(slot)), ()


def _scaled_down(s: DeploymentState, e: ScaledDown) -> Result:
    assert isinstance(s.pending, ScaleDown)
    note = f"{s.pending.slot} scaled down"
    if s.phase is Phase.DRAINING:
        return s.evolve(phase=Phase.SUCCEEDED, pending=None), (note, "deployment succeeded")
    final = Phase.ABORTED if s.aborted else Phase.ROLLED_BACK
    return s.evolve(phase=final, pending=None), (note, f"deployment {final.value}: {s.reason}")


def _rollback(s: DeploymentState, now: float, why: str, *, aborted: bool = False) -> Result:
    s = s.evolve(phase=Phase.ROLLING_BACK, reason=why, aborted=aborted, deadline=None)
    if s.stable is None:
        note = f"rolling back: {why}; no previous release to return to, scaling {s.new_slot} down"
        return s.evolve(pending=ScaleDown(s.new_slot)), (note,)
    return s.evolve(pending=SetTraffic(Weights.all_to(s.old_slot))), (
        f"rolling back to {s.stable.short} on {s.old_slot}: {why}",
    )


def _fail(s: DeploymentState, why: str) -> Result:
    return s.evolve(phase=Phase.FAILED, pending=None, reason=why), (f"deployment failed: {why}",)


def _abort(s: DeploymentState, e: AbortRequested) -> Result:
    return _rollback(s, e.now, f"{e.reason} ({e.actor})", aborted=True)


def _rollback_requested(s: DeploymentState, e: RollbackRequested) -> Result:
    return _rollback(s, e.now, f"{e.reason} ({e.actor})")


def _rollback_draining(s: DeploymentState, e: RollbackRequested) -> Result:
    if not isinstance(s.pending, Hold):
        raise StateConflict(
            f"cannot roll back {s.ref} now: {s.old_slot} is being scaled down",
            hint="wait for the deployment to finish, then run `pipeline rollback` again",
        )
    return _rollback_requested(s, e)


def _abort_pending(s: DeploymentState, e: AbortRequested) -> Result:
    return s.evolve(phase=Phase.ABORTED, pending=None, reason=f"{e.reason} ({e.actor})"), (
        f"aborted before it started ({e.actor})",
    )


def _already_rolling_back(s: DeploymentState, e: AbortRequested | RollbackRequested) -> Result:
    return s, (f"{e.actor} asked again; already rolling back: {s.reason}",)


_P = Phase
TABLE: dict[tuple[Phase, type[Any]], Handler] = {
    (_P.PENDING, Start): _start,
    (_P.PENDING, AbortRequested): _abort_pending,
    (_P.PENDING, RollbackRequested): _abort_pending,
    (_P.STARTING, Provisioned): _provisioned,
    (_P.STARTING, HealthObserved): _health,
    (_P.STARTING, AbortRequested): _abort,
    (_P.STARTING, RollbackRequested): _rollback_requested,
    (_P.PROGRESSING, TrafficSet): _traffic_set,
    (_P.PROGRESSING, TrafficObserved): _traffic_observed,
    (_P.PROGRESSING, Tick): _tick,
    (_P.PROGRESSING, StageFinished): _stage_finished,
    (_P.PROGRESSING, Measured): _measured,
    (_P.PROGRESSING, ContinueRequested): _continue,
    (_P.PROGRESSING, AbortRequested): _abort,
    (_P.PROGRESSING, RollbackRequested): _rollback_requested,
    (_P.PROMOTING, TrafficSet): _traffic_set,
    (_P.PROMOTING, TrafficObserved): _traffic_observed,
    (_P.PROMOTING, AbortRequested): _abort,
    (_P.PROMOTING, RollbackRequested): _rollback_requested,
    (_P.DRAINING, Tick): _tick,
    (_P.DRAINING, ScaledDown): _scaled_down,
    (_P.DRAINING, RollbackRequested): _rollback_draining,
    (_P.ROLLING_BACK, TrafficSet): _traffic_set,
    (_P.ROLLING_BACK, TrafficObserved): _traffic_observed,
    (_P.ROLLING_BACK, Tick): _tick,
    (_P.ROLLING_BACK, ScaledDown): _scaled_down,
    (_P.ROLLING_BACK, AbortRequested): _already_rolling_back,
    (_P.ROLLING_BACK, RollbackRequested): _already_rolling_back,
}
"""Every legal (phase, event) move. Terminal phases accept nothing."""
