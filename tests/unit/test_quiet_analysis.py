"""Deployments in quiet environments: synthetic evidence and ``on_inconclusive``, stepped
through the engine with the fakes (a fake clock, a traffic driver that is the only source
of requests)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from pipeline.core.analysis import AnalysisSpec, Check, Outcome, assess
from pipeline.core.evidence import evidence_due, traffic_rate
from pipeline.core.model import Measurement, Slot, Weights
from pipeline.core.plan import Strategy
from pipeline.core.state import DeploymentState, Hold, Phase, Timeouts
from pipeline.core.steps import Analyze, Pause, SetWeight, canary
from pipeline.operations import Context, abort, deploy, resume_paused
from pipeline.testing import FakeClock, FakePlatform, release
from tests.unit.support.engine import REF, World

QUIET = Strategy(
    steps=canary((SetWeight(10), Pause(30), Analyze(), SetWeight(50), Pause(30), Analyze())),
    analysis=AnalysisSpec(
        min_requests=20, window_seconds=60, interval_seconds=10, max_error_rate_increase=0.01,
        inconclusive_limit=1, synthetic_rate=10.0,
    ),
    timeouts=Timeouts(ready=60, verify=10, stage=60, hold=600, poll=1),
)


def quiet_world(
    strategy: Strategy = QUIET, error_rate: dict[Slot, float] | None = None, *, see_errors: bool = True
) -> World:
    """A world whose only requests are the deployment's own, v1 already serving on blue."""
    clock = FakeClock()
    world = World(clock=clock, platform=FakePlatform.create(clock=clock))
    assert world.platform.traffic is not None
    world.platform.metrics.source = world.platform.traffic.metrics(error_rate, see_errors=see_errors)
    assert deploy(world.ctx(), REF, release("v1"), strategy).phase is Phase.SUCCEEDED
    return world


def analyses(world: World) -> list[dict[str, Any]]:
    return [r.data["analysis"] for r in world.store.history(REF) if "analysis" in r.data]


def test_a_good_canary_in_a_quiet_environment_succeeds_on_synthetic_evidence() -> None:
    world = quiet_world()
    state = deploy(world.ctx(), REF, release("v2"), QUIET)
    assert state.phase is Phase.SUCCEEDED
    judged = analyses(world)
    assert len(judged) == 2
    for figures in judged:
        assert figures["canary"]["requests"] >= 20 and figures["baseline"]["requests"] >= 20
        assert figures["canary"]["synthetic"] == figures["canary"]["requests"]
    assert any("synthetic" in line and "analysis successful" in line for line in world.history())
    assert world.platform.traffic is not None and world.platform.traffic.rate == 0  # stopped at the end


def test_a_bad_canary_in_a_quiet_environment_rolls_back_on_synthetic_evidence() -> None:
    world = quiet_world(error_rate={Slot.GREEN: 0.5})
    state = deploy(world.ctx(), REF, release("v2"), QUIET)
    assert state.phase is Phase.ROLLED_BACK
    assert state.reason.startswith("analysis failed: error_rate 0.5 > 0.01")
    assert "synthetic" in state.reason
    assert world.platform.router.actual == Weights(100, 0)


def test_5xx_answers_the_platform_metric_misses_still_fail_the_analysis() -> None:
    world = quiet_world(error_rate={Slot.GREEN: 0.5}, see_errors=False)  # Lambda: a handler's 500
    state = deploy(world.ctx(), REF, release("v2"), QUIET)
    assert state.phase is Phase.ROLLED_BACK
    assert state.reason.startswith("analysis failed: error_rate 0.5 > 0.01")


def test_without_synthetic_traffic_a_quiet_canary_is_inconclusive_and_rolls_back() -> None:
    silent = replace(QUIET, analysis=replace(QUIET.analysis, synthetic_rate=0.0))
    world = quiet_world(silent)
    state = deploy(world.ctx(), REF, release("v2"), silent)
    assert state.phase is Phase.ROLLED_BACK
    assert state.reason == (
        "analysis inconclusive 2 times: only 0 requests reached the new release in the window (need 20)"
    )


def test_on_inconclusive_promote_accepts_the_steps_and_says_so() -> None:
    lenient = replace(QUIET, analysis=replace(QUIET.analysis, synthetic_rate=0.0, on_inconclusive="promote"))
    world = quiet_world(lenient)
    state = deploy(world.ctx(), REF, release("v2"), lenient)
    assert state.phase is Phase.SUCCEEDED
    assert sum("on_inconclusive is promote" in line for line in world.history()) == 2


PAUSING = replace(QUIET, analysis=replace(QUIET.analysis, synthetic_rate=0.0, on_inconclusive="pause"))


def _paused_on_analysis(state: DeploymentState | None) -> bool:
    return state is not None and state.pending == Hold(None) and isinstance(state.current_step, Analyze)


def _operator(world: World, decisions: list[Callable[[Context], object]]) -> None:
    """Each time the deployment waits on an inconclusive analysis, bob takes the next decision."""
    clock, sleep = world.clock, world.clock.sleep
    seen: set[int] = set()

    def operator_sleep(seconds: float) -> None:
        sleep(seconds)
        state = world.store.load(REF)
        if _paused_on_analysis(state) and state is not None and state.step_index not in seen and decisions:
            seen.add(state.step_index)
            assert decisions.pop(0)(world.ctx(owner="bob@host:2", actor="bob")) is None  # via the inbox

    clock.sleep = operator_sleep  # type: ignore[method-assign]


def test_on_inconclusive_pause_waits_says_what_to_run_then_obeys_continue_and_abort() -> None:
    world = quiet_world(PAUSING)
    _operator(world, [lambda ctx: resume_paused(ctx, REF), lambda ctx: abort(ctx, REF, "no evidence")])
    state = deploy(world.ctx(), REF, release("v2"), PAUSING)
    assert state.phase is Phase.ABORTED
    assert state.reason == "no evidence (bob)"
    history = world.history()
    waits = [line for line in history if line.startswith("waiting for a decision")]
    assert len(waits) == 2
    assert "`pipeline continue orders --env staging`" in waits[0]
    assert "`pipeline abort orders --env staging`" in waits[0]
    assert "bob continued step 4" in history
    assert world.platform.router.history[1:] == [Weights(90, 10), Weights(50, 50), Weights(100, 0)]


def test_a_paused_analysis_nobody_decides_on_rolls_back_at_the_hold_deadline() -> None:
    world = quiet_world(PAUSING)
    state = deploy(world.ctx(), REF, release("v2"), PAUSING)
    assert state.phase is Phase.ROLLED_BACK
    assert state.reason == "nobody continued within 10m"


def _state(strategy: Strategy, weights: Weights, step: int) -> DeploymentState:
    clock = FakeClock()
    world = World(clock=clock)
    deploy(world.ctx(), REF, release("v1"), strategy)
    previous = world.store.load(REF)
    assert previous is not None
    base = replace(previous, id="d-2", release=release("v2"), stable=release("v1"), new_slot=Slot.GREEN,
                   steps=strategy.steps, analysis=strategy.analysis, phase=Phase.PROGRESSING)
    return base.evolve(weights=weights, step_index=step, measure_from=clock.now())


def test_synthetic_traffic_flows_only_while_an_analysis_step_lies_ahead() -> None:
    assert traffic_rate(_state(QUIET, Weights(90, 10), 2)) == 10.0
    assert traffic_rate(_state(QUIET, Weights(100, 0), 1)) == 0.0  # the new slot takes nothing yet
    assert traffic_rate(_state(QUIET, Weights(50, 50), 7)) == 0.0  # no analysis left
    off = replace(QUIET, analysis=replace(QUIET.analysis, synthetic_rate=0.0))
    assert traffic_rate(_state(off, Weights(90, 10), 2)) == 0.0


def test_evidence_is_due_when_the_smaller_judged_share_reached_min_requests() -> None:
    state = _state(QUIET, Weights(90, 10), 2)
    # 10% of 10 rps = 1 rps to the new slot: 20 requests take 20 s, plus headroom and a bucket
    assert evidence_due(state) == pytest.approx(state.measure_from + 26.0)
    state = _state(QUIET, Weights(5, 95), 2)  # the stable baseline is the smaller share now
    assert evidence_due(state) == pytest.approx(state.measure_from + 51.0)
    state = _state(QUIET, Weights(99, 1), 2)  # 200 s needed: never longer than a full window
    assert evidence_due(state) == pytest.approx(state.measure_from + 60.0)


def test_a_compared_baseline_needs_min_requests_too() -> None:
    spec = AnalysisSpec(min_requests=20, max_error_rate_increase=0.01)
    verdict = assess(spec, Measurement(40, 0, 10.0), Measurement(5, 0, 10.0))
    assert verdict.outcome is Outcome.INCONCLUSIVE and verdict.starved
    assert verdict.reason == "only 5 requests reached the stable release in the window (need 20 to compare)"
    alone = replace(spec, max_error_rate_increase=None)
    uncompared = assess(alone, Measurement(40, 0, 10.0), Measurement(5, 0))
    assert uncompared.outcome is Outcome.SUCCESSFUL


def test_a_verdict_says_how_many_requests_were_synthetic() -> None:
    spec = AnalysisSpec(min_requests=20, max_error_rate_increase=0.01)
    canary_ = Measurement(60, 0, 10.0, synthetic=42)
    baseline = Measurement(540, 0, 10.0, synthetic=999)  # never more than measured
    verdict = assess(spec, canary_, baseline)
    assert verdict.reason == (
        "all checks passed over 60 requests to the new release, 42 of 60 synthetic; "
        "540 to the stable one, 540 of 540 synthetic"
    )
    assert verdict.measured is not None and verdict.measured["synthetic"] == 42.0


def test_the_evidence_settings_survive_a_json_roundtrip_and_old_states_get_the_defaults() -> None:
    state = _state(PAUSING, Weights(90, 10), 2).evolve(
        analysis=replace(PAUSING.analysis, synthetic_rate=7.5)
    )
    again = DeploymentState.from_json(state.to_json())
    assert (again.analysis.synthetic_rate, again.analysis.on_inconclusive) == (7.5, "pause")
    old = json.loads(state.to_json())
    del old["analysis"]["synthetic_rate"], old["analysis"]["on_inconclusive"]  # saved by an older toolkit
    legacy = DeploymentState.from_json(json.dumps(old))
    assert (legacy.analysis.synthetic_rate, legacy.analysis.on_inconclusive) == (0.0, "rollback")


def test_a_platform_that_cannot_send_synthetic_traffic_judges_real_traffic_and_says_so() -> None:
    world = World()  # FakePlatform without a clock: no TrafficDriver (like AWS without aws.url)
    assert deploy(world.ctx(), REF, release("v1"), QUIET).phase is Phase.SUCCEEDED
    state = deploy(world.ctx(), REF, release("v2"), QUIET)
    assert state.phase is Phase.SUCCEEDED and state.analysis.synthetic_rate == 0.0
    notes = [line for line in world.history() if line.startswith("no synthetic traffic")]
    assert len(notes) == 2  # one per deployment, each recorded once


def test_a_p95_that_is_only_an_upper_bound_says_so_when_it_fails_a_check() -> None:
    spec = AnalysisSpec(checks=(Check("p95_ms", 100.0),), min_requests=1)
    bound = assess(spec, Measurement(50, 0, 180.0, p95_upper_bound=True), None)
    exact = assess(spec, Measurement(50, 0, 180.0), None)
    assert bound.outcome is Outcome.FAILED and "the source has no p95" in bound.reason
    assert bound.measured is not None and bound.measured["p95_upper_bound"] == 1.0
    assert exact.outcome is Outcome.FAILED and "the source has no p95" not in exact.reason
