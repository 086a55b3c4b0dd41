"""CloudWatchMetrics against moto's CloudWatch; traffic and alarm states are injected.

The realism layer hides datapoints younger than 1-3 minutes on the test's clock, as
CloudWatch does: each test measures a window that ended well before the clock's now.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.aws.alb.metrics import CloudWatchMetrics
from pipeline.aws.alb.router import service_routes
from pipeline.aws.cloudwatch import ATTEMPTS
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec, target_group_dimension
from pipeline.core.analysis import AnalysisSpec, Outcome, assess
from pipeline.core.errors import NotFoundError, PlatformError
from pipeline.core.model import Slot
from pipeline.testing import FakeClock
from tests.adapters.support.ecs import (
    START,
    CallLog,
    put_traffic,
    set_alarm,
)

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)

M0 = START - START % 60 + 60  # the first whole minute after START


def metrics_for(
    session: AwsSession,
    env: AwsEnvironment,
    spec: EcsServiceSpec,
    clock: FakeClock,
    alarms: tuple[str, ...] = (),
    **options: bool,
) -> CloudWatchMetrics:
    live, _ = service_routes(session, env, spec)
    clock.t = max(clock.t, M0 + 900.0)  # every window below is complete by now
    return CloudWatchMetrics(
        session,
        load_balancer=env.load_balancer_dimension,
        groups=live.groups,
        clock=clock,
        alarm_names=alarms,
        min_requests=20,
        **{"percentile_fallback": True, **options},  # the test endpoint has no percentiles
    )


def test_no_datapoints_means_no_requests(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    measured = metrics_for(session, ready_env, spec, clock).measure(Slot.GREEN, M0, M0 + 60)
    assert (measured.requests, measured.errors, measured.p95_ms) == (0, 0, None)


def test_sums_requests_and_5xx_of_the_slot_within_the_window(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    put_traffic(
        session, ready_env, spec, Slot.GREEN, start=M0, seconds=300, requests=50, errors=5, latency=0.08
    )
    put_traffic(
        session, ready_env, spec, Slot.BLUE, start=M0, seconds=300, requests=70, errors=0, latency=0.02
    )
    metrics = metrics_for(session, ready_env, spec, clock)

    green = metrics.measure(Slot.GREEN, M0 + 60, M0 + 120)  # six 10 s datapoints
    blue = metrics.measure(Slot.BLUE, M0 + 60, M0 + 120)

    assert (green.requests, green.errors) == (300, 30)
    assert green.error_rate == pytest.approx(0.1)
    assert green.p95_ms == pytest.approx(80.0)
    assert green.p95_upper_bound  # moto has no percentiles: Maximum, said so
    assert (blue.requests, blue.errors) == (420, 0)


def test_a_canary_that_refuses_connections_fails_the_analysis(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    # A crashed target answers nothing: the ALB's own 502s have no target-group dimension,
    # only TargetConnectionErrorCount shows them per target group.
    put_traffic(
        session, ready_env, spec, Slot.GREEN, start=M0, seconds=120, requests=10, errors=0, refused=10
    )
    metrics = metrics_for(session, ready_env, spec, clock)

    measured = metrics.measure(Slot.GREEN, M0, M0 + 120)

    assert (measured.requests, measured.errors) == (120, 120)
    assert ("connection_errors", 120.0) in measured.extra
    verdict = assess(AnalysisSpec(min_requests=20), measured, None)
    assert verdict.outcome is Outcome.FAILED and verdict.reason.startswith("error_rate 1 > 0.01")


def test_refused_connections_count_even_when_no_request_was_counted(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    put_traffic(session, ready_env, spec, Slot.GREEN, start=M0, seconds=60, requests=0, refused=5)
    measured = metrics_for(session, ready_env, spec, clock).measure(Slot.GREEN, M0, M0 + 60)
    assert (measured.requests, measured.errors) == (30, 30)  # never Inconclusive for want of requests


def test_unhealthy_hosts_fail_the_measurement_when_configured(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    put_traffic(session, ready_env, spec, Slot.GREEN, start=M0, seconds=60, requests=50)
    put_unhealthy(session, ready_env, spec, Slot.GREEN, at=M0 + 30, count=1)

    counted = metrics_for(session, ready_env, spec, clock, count_unhealthy_hosts=True)
    ignored = metrics_for(session, ready_env, spec, clock)

    measured = counted.measure(Slot.GREEN, M0, M0 + 60)
    assert measured.alarms == ("UnHealthyHostCount of orders-green reached 1",)
    assert assess(AnalysisSpec(), measured, None).outcome is Outcome.FAILED
    assert ignored.measure(Slot.GREEN, M0, M0 + 60).alarms == ()


def put_unhealthy(
    session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec, slot: Slot, at: float, count: int
) -> None:
    """``count`` unhealthy targets of ``slot`` at ``at`` (the ALB's UnHealthyHostCount)."""
    live, _ = service_routes(session, env, spec)
    dims = [
        {"Name": "LoadBalancer", "Value": env.load_balancer_dimension},
        {"Name": "TargetGroup", "Value": target_group_dimension(live.groups.arns().of(slot))},
    ]
    session.client("cloudwatch").put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": "UnHealthyHostCount",
                "Dimensions": dims,
                "Timestamp": dt.datetime.fromtimestamp(at, tz=dt.UTC),
                "Value": float(count),
            }
        ],
    )


def test_falls_back_from_percentiles_once_when_allowed(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    put_traffic(session, ready_env, spec, Slot.GREEN, start=M0, seconds=120)
    metrics = metrics_for(session, ready_env, spec, clock)
    log = CallLog().attach(session)

    metrics.measure(Slot.GREEN, M0, M0 + 60)
    first = log.calls["GetMetricData"]
    metrics.measure(Slot.GREEN, M0, M0 + 60)

    assert first == 2  # the p95 query (refused), then the fallback
    assert log.calls["GetMetricData"] == first + 1
    assert metrics.latency_stat == "Maximum"


def test_without_the_test_endpoint_setting_a_refused_p95_is_an_error_not_a_quieter_check(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    put_traffic(session, ready_env, spec, Slot.GREEN, start=M0, seconds=120)
    metrics = metrics_for(session, ready_env, spec, clock, percentile_fallback=False)
    log = CallLog().attach(session)

    with pytest.raises(PlatformError) as caught:
        metrics.measure(Slot.GREEN, M0, M0 + 60)

    assert log.calls["GetMetricData"] == ATTEMPTS  # retried on the clock, then given up
    assert "could not read the metrics of orders-green" in caught.value.message
    assert metrics.latency_stat == "p95"  # the next measurement asks for the p95 again


def test_an_alarm_in_alarm_fails_the_measurement(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    put_traffic(session, ready_env, spec, Slot.GREEN, start=M0, seconds=120, requests=2, errors=0)
    set_alarm("orders-5xx", "ALARM")
    set_alarm("orders-latency", "OK")
    metrics = metrics_for(session, ready_env, spec, clock, alarms=("orders-5xx", "orders-latency"))

    measured = metrics.measure(Slot.GREEN, M0, M0 + 60)

    assert measured.alarms == ("orders-5xx",)
    verdict = assess(AnalysisSpec(min_requests=20), measured, None)  # 2 requests: an alarm still fails
    assert verdict.outcome is Outcome.FAILED and verdict.reason == "alarm in ALARM: orders-5xx"
    assert all("orders-latency" not in name for name, _ in measured.extra)


def test_alarms_in_ok_change_nothing(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    put_traffic(session, ready_env, spec, Slot.GREEN, start=M0, seconds=120, requests=50, errors=1)
    set_alarm("orders-5xx", "OK")
    measured = metrics_for(session, ready_env, spec, clock, alarms=("orders-5xx",)).measure(
        Slot.GREEN, M0, M0 + 60
    )
    assert (measured.requests, measured.errors) == (300, 6)


def test_a_configured_alarm_that_does_not_exist_is_an_error(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    set_alarm("orders-5xx", "OK")
    metrics = metrics_for(session, ready_env, spec, clock, alarms=("orders-5xx", "orders-5xxx"))

    with pytest.raises(NotFoundError) as caught:
        metrics.measure(Slot.GREEN, M0, M0 + 60)

    wanted = "CloudWatch has no alarm 'orders-5xxx': the analysis cannot use it as a gate"
    assert caught.value.message == wanted
