"""Analysis windows of a periodic metrics source (CloudWatch: whole minutes that land late).

CloudWatch's GetMetricData rounds ``StartTime`` down to the period, ALB and Lambda publish
60-second aggregates, and a minute's data is complete only a while after it ends
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html).
A window is therefore whole minutes, and a measurement waits until its last minute is in.
"""

from __future__ import annotations

import pytest

from pipeline.core.analysis import AnalysisSpec, Window, analysis_window
from pipeline.core.machine import transition
from pipeline.core.model import Measurement, Weights
from pipeline.core.plan import Strategy, new_deployment
from pipeline.core.state import (
    DeploymentState,
    Measure,
    Measured,
    Phase,
    TrafficObserved,
    VerifyTraffic,
    not_before,
)
from pipeline.core.steps import Analyze, SetWeight
from pipeline.testing import release
from tests.unit.support.engine import REF

CLOUDWATCH = AnalysisSpec(window_seconds=120, interval_seconds=10, period_seconds=60, lag_seconds=120)
T = 1_700_000_000.0 - 1_700_000_000.0 % 60  # a minute boundary


def test_an_exact_source_reads_up_to_the_moment_of_measuring() -> None:
    spec = AnalysisSpec(window_seconds=60)
    assert analysis_window(spec, measure_from=T + 5, now=T + 100) == Window(T + 40, 0.0, T + 100)
    assert analysis_window(spec, measure_from=T + 70, now=T + 100).since == T + 70


def test_a_periodic_window_is_whole_minutes_ending_before_now() -> None:
    w = analysis_window(CLOUDWATCH, measure_from=T - 600, now=T + 150)
    assert (w.since, w.until) == (T, T + 120)
    assert w.since % 60 == 0 and w.until % 60 == 0


def test_a_periodic_window_is_complete_only_after_the_lag() -> None:
    w = analysis_window(CLOUDWATCH, measure_from=T - 600, now=T + 150)
    assert w.ready_at == T + 120 + 120


def test_a_periodic_window_never_starts_before_the_weights_took_effect() -> None:
    # verified at T+10: the minute [T, T+60) mixes traffic from before the shift
    w = analysis_window(CLOUDWATCH, measure_from=T + 10, now=T + 200)
    assert (w.since, w.until) == (T + 60, T + 180)


def test_a_periodic_window_holds_a_whole_window_at_the_current_weights() -> None:
    # entered 20 s after the weights were verified: wait for two whole minutes after it
    w = analysis_window(CLOUDWATCH, measure_from=T + 10, now=T + 30)
    assert (w.since, w.until, w.ready_at) == (T + 60, T + 180, T + 300)


def test_a_window_shorter_than_a_period_reads_one_whole_period() -> None:
    spec = AnalysisSpec(window_seconds=20, period_seconds=60, lag_seconds=0)
    w = analysis_window(spec, measure_from=T - 600, now=T + 130)
    assert (w.since, w.until) == (T + 60, T + 120)


def test_a_repeated_measurement_reads_a_later_window() -> None:
    w = analysis_window(CLOUDWATCH, measure_from=T - 600, now=T + 150, after=T + 120)
    assert w.until == T + 180


@pytest.mark.parametrize("verified_at", [T + 1, T + 59.5, T + 60])
def test_windows_are_aligned_whatever_the_verification_time(verified_at: float) -> None:
    w = analysis_window(CLOUDWATCH, measure_from=verified_at, now=verified_at + 300)
    assert w.since % 60 == 0 and w.until % 60 == 0 and w.since >= verified_at and w.until > w.since


def _at_analysis(spec: AnalysisSpec, now: float) -> tuple[DeploymentState, Measure]:
    """A canary whose 10% weights were verified at ``now``; its next step is an analysis."""
    stable = new_deployment(
        deployment_id="d-0",
        ref=REF,
        release=release("v1"),
        previous=None,
        strategy=Strategy(steps=()),
        actor="t",
        now=0,
    ).evolve(phase=Phase.SUCCEEDED)
    state = new_deployment(
        deployment_id="d-1",
        ref=REF,
        release=release("v2"),
        previous=stable,
        strategy=Strategy(steps=(SetWeight(10), Analyze()), analysis=spec),
        actor="t",
        now=0,
    )
    weights = Weights.split(state.new_slot, 10)
    state = state.evolve(phase=Phase.PROGRESSING, pending=VerifyTraffic(weights), step_index=0)
    state, _ = transition(state, TrafficObserved(now, weights))
    assert isinstance(state.pending, Measure)
    return state, state.pending


def test_the_measure_action_waits_until_its_window_is_complete() -> None:
    _, measure = _at_analysis(CLOUDWATCH, T + 10)
    assert (measure.since, measure.until) == (T + 60, T + 180)
    assert not_before(measure) == T + 300  # the last minute ends at T+180, plus 2 minutes' lag


def test_a_retried_measurement_never_judges_the_same_minutes_again() -> None:
    state, measure = _at_analysis(CLOUDWATCH, T + 10)
    quiet = Measurement(requests=0, errors=0)
    state, _ = transition(state, Measured(T + 300, quiet, None))  # inconclusive: measure again
    again = state.pending
    assert isinstance(again, Measure)
    assert again.until >= measure.until + 60
    assert not_before(again) >= again.until + 120


def test_an_exact_source_measures_as_before() -> None:
    _, measure = _at_analysis(AnalysisSpec(window_seconds=60), T + 10)
    assert (measure.since, measure.until, not_before(measure)) == (T + 10, 0.0, 0.0)
