"""Every row of the transition table, and the moves that are not in it."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.core.analysis import AnalysisSpec
from pipeline.core.errors import StateConflict
from pipeline.core.machine import TABLE, transition
from pipeline.core.model import Measurement, Slot, StageResult, Weights
from pipeline.core.plan import Strategy, new_deployment
from pipeline.core.state import (
    TERMINAL,
    AbortRequested,
    AwaitReady,
    ContinueRequested,
    DeploymentState,
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
    Timeouts,
    TrafficObserved,
    TrafficSet,
    VerifyTraffic,
)
from pipeline.core.steps import Analyze, Pause, SetWeight
from pipeline.testing import release
from tests.unit.support.engine import REF

NOW = 1000.0
GREEN20 = Weights(80, 20)


def _state(phase: Phase, pending: Any, **changes: Any) -> DeploymentState:
    previous = new_deployment(
        deployment_id="d-0",
        ref=REF,
        release=release("v1"),
        previous=None,
        strategy=Strategy(steps=()),
        actor="t",
        now=0,
    ).evolve(phase=Phase.SUCCEEDED)
    base = new_deployment(
        deployment_id="d-1",
        ref=REF,
        release=release("v2"),
        previous=previous,
        strategy=Strategy(
            steps=(SetWeight(20), Pause(10), Analyze()),
            analysis=AnalysisSpec(min_requests=1),
            timeouts=Timeouts(ready=60, verify=10, hold=100, poll=1),
        ),
        actor="t",
        now=0,
    )
    return base.evolve(phase=phase, pending=pending, **changes)


# One representative (state, event, expected phase, expected pending type) per table row.
ROWS: dict[tuple[Phase, type], tuple[DeploymentState, Any, Phase, type | None]] = {
    (Phase.PENDING, Start): (_state(Phase.PENDING, None), Start(NOW), Phase.STARTING, Provision),
    (Phase.PENDING, AbortRequested): (
        _state(Phase.PENDING, None),
        AbortRequested(NOW, "bob"),
        Phase.ABORTED,
        None,
    ),
    (Phase.PENDING, RollbackRequested): (
        _state(Phase.PENDING, None),
        RollbackRequested(NOW, "bob"),
        Phase.ABORTED,
        None,
    ),
    (Phase.STARTING, Provisioned): (
        _state(Phase.STARTING, Provision(Slot.GREEN)),
        Provisioned(NOW),
        Phase.STARTING,
        AwaitReady,
    ),
    (Phase.STARTING, HealthObserved): (
        _state(Phase.STARTING, AwaitReady(Slot.GREEN), deadline=NOW + 5),
        HealthObserved(NOW, True, "ok"),
        Phase.PROGRESSING,
        SetTraffic,
    ),
    (Phase.STARTING, AbortRequested): (
        _state(Phase.STARTING, AwaitReady(Slot.GREEN)),
        AbortRequested(NOW, "bob"),
        Phase.ROLLING_BACK,
        SetTraffic,
    ),
    (Phase.STARTING, RollbackRequested): (
        _state(Phase.STARTING, AwaitReady(Slot.GREEN)),
        RollbackRequested(NOW, "bob"),
        Phase.ROLLING_BACK,
        SetTraffic,
    ),
    (Phase.PROGRESSING, TrafficSet): (
        _state(Phase.PROGRESSING, SetTraffic(GREEN20)),
        TrafficSet(NOW),
        Phase.PROGRESSING,
        VerifyTraffic,
    ),
    (Phase.PROGRESSING, TrafficObserved): (
        _state(Phase.PROGRESSING, VerifyTraffic(GREEN20)),
        TrafficObserved(NOW, GREEN20),
        Phase.PROGRESSING,
        Hold,
    ),
    (Phase.PROGRESSING, Tick): (
        _state(Phase.PROGRESSING, Hold(NOW), step_index=1),
        Tick(NOW),
        Phase.PROGRESSING,
        Measure,
    ),
    (Phase.PROGRESSING, StageFinished): (
        _state(Phase.PROGRESSING, RunStage("test", Slot.GREEN), step_index=2),
        StageFinished(NOW, StageResult(True, "ok")),
        Phase.PROMOTING,
        SetTraffic,
    ),
    (Phase.PROGRESSING, Measured): (
        _state(Phase.PROGRESSING, Measure(Slot.GREEN, 0), step_index=2),
        Measured(NOW, Measurement(100, 0, 5), None),
        Phase.PROMOTING,
        SetTraffic,
    ),
    (Phase.PROGRESSING, ContinueRequested): (
        _state(Phase.PROGRESSING, Hold(None), step_index=1),
        ContinueRequested(NOW, "bob"),
        Phase.PROGRESSING,
        Measure,
    ),
    (Phase.PROGRESSING, AbortRequested): (
        _state(Phase.PROGRESSING, Hold(None)),
        AbortRequested(NOW, "bob"),
        Phase.ROLLING_BACK,
        SetTraffic,
    ),
    (Phase.PROGRESSING, RollbackRequested): (
        _state(Phase.PROGRESSING, Hold(None)),
        RollbackRequested(NOW, "bob"),
        Phase.ROLLING_BACK,
        SetTraffic,
    ),
    (Phase.PROMOTING, TrafficSet): (
        _state(Phase.PROMOTING, SetTraffic(Weights(0, 100))),
        TrafficSet(NOW),
        Phase.PROMOTING,
        VerifyTraffic,
    ),
    (Phase.PROMOTING, TrafficObserved): (
        _state(Phase.PROMOTING, VerifyTraffic(Weights(0, 100))),
        TrafficObserved(NOW, Weights(0, 100)),
        Phase.DRAINING,
        ScaleDown,
    ),
    (Phase.PROMOTING, AbortRequested): (
        _state(Phase.PROMOTING, SetTraffic(Weights(0, 100))),
        AbortRequested(NOW, "bob"),
        Phase.ROLLING_BACK,
        SetTraffic,
    ),
    (Phase.PROMOTING, RollbackRequested): (
        _state(Phase.PROMOTING, SetTraffic(Weights(0, 100))),
        RollbackRequested(NOW, "bob"),
        Phase.ROLLING_BACK,
        SetTraffic,
    ),
    (Phase.DRAINING, Tick): (_state(Phase.DRAINING, Hold(NOW)), Tick(NOW), Phase.DRAINING, ScaleDown),
    (Phase.DRAINING, ScaledDown): (
        _state(Phase.DRAINING, ScaleDown(Slot.BLUE)),
        ScaledDown(NOW),
        Phase.SUCCEEDED,
        None,
    ),
    (Phase.DRAINING, RollbackRequested): (
        _state(Phase.DRAINING, Hold(NOW + 50)),
        RollbackRequested(NOW, "bob"),
        Phase.ROLLING_BACK,
        SetTraffic,
    ),
    (Phase.ROLLING_BACK, TrafficSet): (
        _state(Phase.ROLLING_BACK, SetTraffic(Weights(100, 0))),
        TrafficSet(NOW),
        Phase.ROLLING_BACK,
        VerifyTraffic,
    ),
    (Phase.ROLLING_BACK, TrafficObserved): (
        _state(Phase.ROLLING_BACK, VerifyTraffic(Weights(100, 0))),
        TrafficObserved(NOW, Weights(100, 0)),
        Phase.ROLLING_BACK,
        ScaleDown,
    ),
    (Phase.ROLLING_BACK, Tick): (
        _state(Phase.ROLLING_BACK, Hold(NOW)),
        Tick(NOW),
        Phase.ROLLING_BACK,
        ScaleDown,
    ),
    (Phase.ROLLING_BACK, ScaledDown): (
        _state(Phase.ROLLING_BACK, ScaleDown(Slot.GREEN)),
        ScaledDown(NOW),
        Phase.ROLLED_BACK,
        None,
    ),
    (Phase.ROLLING_BACK, AbortRequested): (
        _state(Phase.ROLLING_BACK, ScaleDown(Slot.GREEN)),
        AbortRequested(NOW, "bob"),
        Phase.ROLLING_BACK,
        ScaleDown,
    ),
    (Phase.ROLLING_BACK, RollbackRequested): (
        _state(Phase.ROLLING_BACK, ScaleDown(Slot.GREEN)),
        RollbackRequested(NOW, "bob"),
        Phase.ROLLING_BACK,
        ScaleDown,
    ),
}


def test_every_table_row_has_a_case() -> None:
    assert set(ROWS) == set(TABLE)


@pytest.mark.parametrize("row", list(ROWS), ids=lambda r: f"{r[0].value}-{r[1].__name__}")
def test_table_row(row: tuple[Phase, type]) -> None:
    state, event, phase, pending = ROWS[row]
    new, _notes = transition(state, event)
    assert new.phase is phase
    assert (type(new.pending) if new.pending else None) is pending
    assert new.updated_at == NOW


@pytest.mark.parametrize("phase", sorted(TERMINAL))
@pytest.mark.parametrize(
    "event",
    [
        Start(NOW),
        ContinueRequested(NOW, "b"),
        AbortRequested(NOW, "b"),
        RollbackRequested(NOW, "b"),
        Tick(NOW),
    ],
)
def test_terminal_phases_accept_nothing(phase: Phase, event: Any) -> None:
    with pytest.raises(StateConflict, match=phase.value):
        transition(_state(phase, None), event)


def test_continue_is_refused_when_nothing_is_paused() -> None:
    state = _state(Phase.PROGRESSING, Measure(Slot.GREEN, 0), step_index=2)
    with pytest.raises(StateConflict, match="not paused"):
        transition(state, ContinueRequested(NOW, "bob"))


def test_rollback_is_refused_while_the_previous_slot_is_being_scaled_down() -> None:
    with pytest.raises(StateConflict, match="being scaled down"):
        transition(_state(Phase.DRAINING, ScaleDown(Slot.BLUE)), RollbackRequested(NOW, "bob"))


def test_unverified_weights_retry_until_the_deadline_then_roll_back() -> None:
    state = _state(Phase.PROGRESSING, VerifyTraffic(GREEN20), deadline=NOW + 10)
    retry, _ = transition(state, TrafficObserved(NOW, Weights(100, 0)))
    assert retry.pending == VerifyTraffic(GREEN20, not_before=NOW + 1)
    late, notes = transition(retry, TrafficObserved(NOW + 10, Weights(100, 0)))
    assert late.phase is Phase.ROLLING_BACK and late.pending == SetTraffic(Weights(100, 0))
    assert "wanted blue 80% / green 20%" in notes[0]


def test_state_survives_a_json_roundtrip_in_every_row() -> None:
    for state, _event, _phase, _pending in ROWS.values():
        assert DeploymentState.from_json(state.to_json()) == state


@pytest.mark.parametrize("phase", [Phase.PROMOTING, Phase.ROLLING_BACK])
def test_a_slot_is_drained_before_it_is_scaled_down(phase: Phase) -> None:
    target = Weights(0, 100) if phase is Phase.PROMOTING else Weights(100, 0)
    state = _state(phase, VerifyTraffic(target), drain_seconds=30)
    held, _notes = transition(state, TrafficObserved(NOW, target))
    assert held.pending == Hold(NOW + 30)
    early, _ = transition(held, Tick(NOW + 29))
    assert early.pending == Hold(NOW + 30)
    done, _ = transition(early, Tick(NOW + 30))
    assert isinstance(done.pending, ScaleDown)
    assert done.pending.slot is (Slot.BLUE if phase is Phase.PROMOTING else Slot.GREEN)


def test_a_firing_alarm_fails_the_analysis_even_without_traffic() -> None:
    state = _state(Phase.PROGRESSING, Measure(Slot.GREEN, 0), step_index=2)
    quiet = Measurement(0, 0, None, alarms=("orders-5xx",))
    rolled, _ = transition(state, Measured(NOW, quiet, None))
    assert rolled.phase is Phase.ROLLING_BACK
    assert rolled.reason == "analysis failed: alarm in ALARM: orders-5xx"
