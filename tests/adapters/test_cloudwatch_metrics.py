"""CloudWatchMetrics against moto's CloudWatch; traffic and alarm states are injected."""

from __future__ import annotations

import pytest

from pipeline.aws.alb.metrics import CloudWatchMetrics
from pipeline.aws.alb.router import service_routes
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.core.analysis import AnalysisSpec, Outcome, assess
from pipeline.core.model import Slot
from pipeline.testing import FakeClock
from tests.adapters.support.ecs import (
    START,
    CallLog,
    put_traffic,
    set_alarm,
)

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)


def metrics_for(
    session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec, alarms: tuple[str, ...] = ()
) -> CloudWatchMetrics:
    live, _ = service_routes(session, env, spec)
    return CloudWatchMetrics(
        session,
        load_balancer=env.load_balancer_dimension,
        groups=live.groups,
        alarm_names=alarms,
        min_requests=20,
    )


def test_no_datapoints_means_no_requests(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec
) -> None:
    measured = metrics_for(session, ready_env, spec).measure(Slot.GREEN, START, START + 60)
    assert (measured.requests, measured.errors, measured.p95_ms) == (0, 0, None)


def test_sums_requests_and_5xx_of_the_slot_within_the_window(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec
) -> None:
    put_traffic(
        session, ready_env, spec, Slot.GREEN, start=START, seconds=300, requests=50, errors=5, latency=0.08
    )
    put_traffic(
        session, ready_env, spec, Slot.BLUE, start=START, seconds=300, requests=70, errors=0, latency=0.02
    )
    metrics = metrics_for(session, ready_env, spec)

    green = metrics.measure(Slot.GREEN, START + 60, START + 120)  # six 10 s datapoints
    blue = metrics.measure(Slot.BLUE, START + 60, START + 120)

    assert (green.requests, green.errors) == (300, 30)
    assert green.error_rate == pytest.approx(0.1)
    assert green.p95_ms == pytest.approx(80.0)
    assert green.p95_upper_bound  # moto has no percentiles: Maximum, said so
    assert (blue.requests, blue.errors) == (420, 0)


def test_falls_back_from_percentiles_once(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec
) -> None:
    put_traffic(session, ready_env, spec, Slot.GREEN, start=START, seconds=120)
    metrics = metrics_for(session, ready_env, spec)
    log = CallLog().attach(session)

    metrics.measure(Slot.GREEN, START, START + 60)
    first = log.calls["GetMetricData"]
    metrics.measure(Slot.GREEN, START, START + 60)

    assert first == 2  # the p95 query (refused), then the fallback
    assert log.calls["GetMetricData"] == first + 1
    assert metrics.latency_stat == "Maximum"


def test_an_alarm_in_alarm_fails_the_measurement(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec
) -> None:
    put_traffic(session, ready_env, spec, Slot.GREEN, start=START, seconds=120, requests=2, errors=0)
    set_alarm("orders-5xx", "ALARM")
    set_alarm("orders-latency", "OK")
    metrics = metrics_for(session, ready_env, spec, alarms=("orders-5xx", "orders-latency"))

    measured = metrics.measure(Slot.GREEN, START, START + 60)

    assert measured.alarms == ("orders-5xx",)
    verdict = assess(AnalysisSpec(min_requests=20), measured, None)  # 2 requests: an alarm still fails
    assert verdict.outcome is Outcome.FAILED and verdict.reason == "alarm in ALARM: orders-5xx"
    assert all("orders-latency" not in name for name, _ in measured.extra)


def test_alarms_in_ok_change_nothing(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    put_traffic(session, ready_env, spec, Slot.GREEN, start=START, seconds=120, requests=50, errors=1)
    set_alarm("orders-5xx", "OK")
    measured = metrics_for(session, ready_env, spec, alarms=("orders-5xx",)).measure(
        Slot.GREEN, START, START + 60
    )
    assert (measured.requests, measured.errors) == (300, 6)
