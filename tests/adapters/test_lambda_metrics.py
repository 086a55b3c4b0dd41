"""``LambdaMetrics`` against moto's CloudWatch: per executed version, no data, alarms."""
# ruff: noqa: F401, F811 - the ``lambda_aws`` fixture is imported, then requested by name

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.aws.lambda_.metrics import LambdaMetrics
from pipeline.core.analysis import AnalysisSpec, Outcome, assess
from pipeline.core.errors import PlatformError
from pipeline.core.model import Slot
from pipeline.testing import release
from tests.adapters.support.lambda_world import LambdaWorld, lambda_aws


def _metrics(world: LambdaWorld, alarms: tuple[str, ...] = ()) -> LambdaMetrics:
    spec = world.spec(alarm_names=alarms)
    world.bootstrap(spec)
    platform = world.platform(spec)
    platform.compute.provision(Slot.BLUE, release("v1"))
    world.write_code("{'statusCode': 200, 'body': 'v2'}")
    platform.compute.provision(Slot.GREEN, release("v2"))
    metrics = platform.metrics
    assert isinstance(metrics, LambdaMetrics)
    return metrics


def test_each_slot_is_measured_by_the_version_it_executed(lambda_aws: LambdaWorld) -> None:
    metrics = _metrics(lambda_aws)
    start = lambda_aws.clock.now()
    lambda_aws.put_metrics(
        "orders-dev", "3", invocations=30, errors=3, throttles=2, duration_ms=120.0, minutes=5
    )
    lambda_aws.put_metrics("orders-dev", "2", invocations=100, errors=1, duration_ms=50.0, minutes=5)

    green = metrics.measure(Slot.GREEN, start, start + 300)
    blue = metrics.measure(Slot.BLUE, start, start + 300)

    # Throttles are published per alias only (a throttled request executes no version):
    # the alias's 10 are shared by invocations, 150 of 650 to green, 500 of 650 to blue.
    assert (green.requests, green.errors) == (150 + 3, 15 + 3)
    assert (blue.requests, blue.errors) == (500 + 8, 5 + 8)
    assert green.p95_ms == 120.0 and blue.p95_ms == 50.0
    assert green.p95_upper_bound  # moto has no percentiles: the test endpoint setting allows Maximum
    assert ("throttles", 3.0) in green.extra and ("alias_throttles", 10.0) in green.extra


def test_throttles_of_an_alias_that_executed_nothing_fail_every_slot(lambda_aws: LambdaWorld) -> None:
    metrics = _metrics(lambda_aws)
    start = lambda_aws.clock.now()
    lambda_aws.put_metrics("orders-dev", "3", invocations=0, throttles=20, minutes=2)

    m = metrics.measure(Slot.GREEN, start, start + 120)

    assert (m.requests, m.errors) == (40, 40)
    assert assess(AnalysisSpec(), m, None).outcome is Outcome.FAILED


def test_5xx_the_function_returns_through_the_http_api_count_as_errors(lambda_aws: LambdaWorld) -> None:
    # {"statusCode": 500} is a successful invocation to Lambda (no Errors); only API
    # Gateway's per-route 5xx metric sees it.
    metrics = _metrics(lambda_aws)
    start = lambda_aws.clock.now()
    lambda_aws.put_metrics("orders-dev", "3", invocations=30, minutes=2)
    lambda_aws.put_metrics("orders-dev", "2", invocations=90, minutes=2)
    api_id = put_route_5xx(lambda_aws, "ANY /orders/{proxy+}", per_minute=30, minutes=2, start=start)

    green = metrics.measure(Slot.GREEN, start, start + 120)

    assert api_id and metrics.routes == ("ANY /orders/{proxy+}",)
    assert ("http_5xx", 15.0) in green.extra  # 60 unexplained 5xx, a quarter of the invocations
    assert (green.requests, green.errors) == (60, 15)
    assert assess(AnalysisSpec(), green, None).outcome is Outcome.FAILED


def put_route_5xx(world: LambdaWorld, route: str, *, per_minute: int, minutes: int, start: float) -> str:
    """API Gateway's detailed ``5xx`` metric of ``route`` on the ``$default`` stage."""
    api = next(
        a for a in world.session.client("apigatewayv2").get_apis()["Items"] if a["Name"] == "pipeline-dev"
    )
    dims = [
        {"Name": "ApiId", "Value": api["ApiId"]},
        {"Name": "Stage", "Value": "$default"},
        {"Name": "Route", "Value": route},
    ]
    data = [
        {
            "MetricName": "5xx",
            "Dimensions": dims,
            "Timestamp": dt.datetime.fromtimestamp(start + 60 * i, tz=dt.UTC),
            "Value": float(per_minute),
        }
        for i in range(minutes)
    ]
    world.session.client("cloudwatch").put_metric_data(Namespace="AWS/ApiGateway", MetricData=data)
    return str(api["ApiId"])


def test_no_datapoints_means_no_requests(lambda_aws: LambdaWorld) -> None:
    metrics = _metrics(lambda_aws)
    now = lambda_aws.clock.now()

    m = metrics.measure(Slot.GREEN, now - 60, now)

    assert (m.requests, m.errors, m.p95_ms) == (0, 0, None)


def test_the_window_bounds_what_is_counted(lambda_aws: LambdaWorld) -> None:
    metrics = _metrics(lambda_aws)
    start = lambda_aws.clock.now()
    lambda_aws.put_metrics("orders-dev", "3", invocations=10, minutes=10)

    m = metrics.measure(Slot.GREEN, start + 120, start + 240)

    assert 10 <= m.requests <= 30  # 2 of the 10 minutes (+ one boundary minute at most)


def test_an_alarm_in_alarm_state_fails_the_measurement(lambda_aws: LambdaWorld) -> None:
    metrics = _metrics(lambda_aws, alarms=("orders-dev-errors",))
    cloudwatch = lambda_aws.session.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="orders-dev-errors",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    now = lambda_aws.clock.now()
    assert metrics.measure(Slot.GREEN, now - 60, now).requests == 0  # OK: no gate

    cloudwatch.set_alarm_state(AlarmName="orders-dev-errors", StateValue="ALARM", StateReason="5 errors")

    measured = metrics.measure(Slot.GREEN, now - 60, now)
    assert measured.alarms == ("orders-dev-errors (5 errors)",)
    verdict = assess(AnalysisSpec(), measured, None)
    assert verdict.outcome is Outcome.FAILED
    assert verdict.reason == "alarm in ALARM: orders-dev-errors (5 errors)"


def test_composite_alarms_are_asked_for_with_the_metric_alarms(lambda_aws: LambdaWorld) -> None:
    # DescribeAlarms returns composite alarms only when asked: both kinds gate the analysis.
    # The test endpoint has no composite alarms (tests/adapters/test_alarms.py models them).
    metrics = _metrics(lambda_aws, alarms=("orders-dev-health",))
    cloudwatch = lambda_aws.session.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="orders-dev-health",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="orders-dev-health", StateValue="ALARM", StateReason="unhealthy")
    now = lambda_aws.clock.now()

    assert metrics.measure(Slot.GREEN, now - 60, now).alarms == ("orders-dev-health (unhealthy)",)

    asked = lambda_aws.calls.named("DescribeAlarms")
    assert [p["AlarmTypes"] for p in asked] == [["MetricAlarm", "CompositeAlarm"]]
    assert asked[0]["AlarmNames"] == ["orders-dev-health"]


def test_bootstrap_turns_on_route_metrics_where_live_traffic_enters(lambda_aws: LambdaWorld) -> None:
    # API Gateway publishes per-route 5xx only with detailed metrics on
    _metrics(lambda_aws)
    client = lambda_aws.session.client("apigatewayv2")
    api = next(a for a in client.get_apis()["Items"] if a["Name"] == "pipeline-dev")
    settings = {
        s["StageName"]: s.get("DefaultRouteSettings", {}).get("DetailedMetricsEnabled")
        for s in client.get_stages(ApiId=api["ApiId"])["Items"]
    }
    assert settings == {"$default": True, "blue": False, "green": False}
