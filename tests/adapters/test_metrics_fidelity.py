"""The metrics adapters against CloudWatch's documented behaviour (Stubber), where the test
endpoint is kinder than AWS: it publishes instantly, never throttles GetMetricData and has
no percentiles, no composite alarms, no HTTP API metrics.

- GetMetricData rounds ``StartTime`` down to the period; ALB, Lambda and API Gateway
  publish 60-second aggregates that land minutes late
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html);
- it answers ``Throttling`` past its request rate
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CommonErrors.html);
- Lambda's ``Throttles`` has no ``ExecutedVersion``: a throttled request executes no version
  (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html);
- an HTTP API's per-route ``5xx`` has the dimensions ``ApiId``, ``Stage``, ``Route``
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-metrics.html).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from pipeline.aws.alb.metrics import CloudWatchMetrics
from pipeline.aws.alb.rules import SlotTargetGroups
from pipeline.aws.cloudwatch import ATTEMPTS
from pipeline.aws.lambda_.api import LambdaApi
from pipeline.aws.lambda_.metrics import LambdaMetrics
from pipeline.aws.lambda_.slots import SlotVersions
from pipeline.aws.session import AwsSession, SessionSettings
from pipeline.config.project import EnvironmentConfig
from pipeline.core.analysis import AnalysisSpec, Outcome, assess
from pipeline.core.errors import TransientPlatformError
from pipeline.core.machine import transition
from pipeline.core.model import Slot, Weights
from pipeline.core.plan import Strategy, new_deployment
from pipeline.core.state import Measure, Phase, TrafficObserved, VerifyTraffic, not_before
from pipeline.core.steps import Analyze, SetWeight
from pipeline.testing import FakeClock, release
from tests.adapters.support.aws_responses import cloudwatch_throttled, metric_data

REGION = "eu-west-1"
LB = "app/shop/50dc6c495c0c9188"
TG = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/orders-{}/{}"
T = 1_790_000_000.0 - 1_790_000_000.0 % 60  # a minute boundary
LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188"
AWS_ENV: dict[str, Any] = {
    "platform": "aws",
    "owner": "dev",
    "aws": {
        "region": REGION,
        "account": "123456789012",
        "cluster": "shop",
        "listener_arn": f"{LISTENER}/1",
        "test_listener_arn": f"{LISTENER}/2",
        "state_table": "pipeline-state",
        "vpc_id": "vpc-0a1b2c3d",
        "subnets": ["subnet-0a1b2c3d"],
        "security_groups": ["sg-0a1b2c3d"],
        "ecr_registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    },
}


class Stubbed:
    """A session whose CloudWatch client answers from a Stubber, and the requests it saw."""

    def __init__(self) -> None:
        self.session = AwsSession(SessionSettings(region=REGION, max_attempts=1))
        self.cloudwatch = self.session.client("cloudwatch")
        self.stub = Stubber(self.cloudwatch)
        self.requests: list[dict[str, Any]] = []
        self.cloudwatch.meta.events.register("provide-client-params.cloudwatch.GetMetricData", self._seen)

    def _seen(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(params)

    def stats(self, index: int = -1) -> dict[str, str]:
        return {q["Id"]: q["MetricStat"]["Stat"] for q in self.requests[index]["MetricDataQueries"]}

    def dimensions(self, ident: str, index: int = -1) -> dict[str, str]:
        (query,) = [q for q in self.requests[index]["MetricDataQueries"] if q["Id"] == ident]
        return {d["Name"]: d["Value"] for d in query["MetricStat"]["Metric"]["Dimensions"]}


@pytest.fixture
def cw(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubbed]:
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(key, value)
    stubbed = Stubbed()
    with stubbed.stub:
        yield stubbed
        stubbed.stub.assert_no_pending_responses()


def alb_metrics(cw: Stubbed, clock: FakeClock) -> CloudWatchMetrics:
    elbv2 = cw.session.client("elbv2")
    groups = SlotTargetGroups(cw.session, ("orders-blue", "orders-green"))
    with Stubber(elbv2) as stub:
        stub.add_response(
            "describe_target_groups",
            {
                "TargetGroups": [
                    {"TargetGroupName": "orders-green", "TargetGroupArn": TG.format("green", "2b")},
                    {"TargetGroupName": "orders-blue", "TargetGroupArn": TG.format("blue", "1a")},
                ]
            },
            {"Names": ["orders-blue", "orders-green"]},
        )
        groups.arns()
    return CloudWatchMetrics(cw.session, load_balancer=LB, groups=groups, clock=clock)


def answer(requests: float, target_5xx: float = 0, refused: float = 0, p95: float = 0.05) -> dict[str, Any]:
    values = {
        "requests": [requests],
        "target_5xx": [target_5xx],
        "connection_errors": [refused],
        "latency": [p95],
    }
    return metric_data(values, dt.datetime.fromtimestamp(T, tz=dt.UTC))


def aws_measure(verified_at: float) -> Measure:
    """The Measure an AWS environment's canary plans after its weights were verified."""
    env = EnvironmentConfig.model_validate(AWS_ENV)
    strategy = env.shape(
        Strategy(steps=(SetWeight(10), Analyze()), analysis=AnalysisSpec(window_seconds=120))
    )
    stable = new_deployment(
        deployment_id="d-0",
        ref=_ref(),
        release=release("v1"),
        previous=None,
        strategy=Strategy(steps=()),
        actor="t",
        now=0,
    ).evolve(phase=Phase.SUCCEEDED)
    state = new_deployment(
        deployment_id="d-1",
        ref=_ref(),
        release=release("v2"),
        previous=stable,
        strategy=strategy,
        actor="t",
        now=0,
    )
    weights = Weights.split(state.new_slot, 10)
    state = state.evolve(phase=Phase.PROGRESSING, pending=VerifyTraffic(weights))
    state, _ = transition(state, TrafficObserved(verified_at, weights))
    assert isinstance(state.pending, Measure)
    return state.pending


def _ref() -> Any:
    from pipeline.core.model import ServiceRef

    return ServiceRef("orders", "aws-dev")


def test_an_aws_analysis_reads_whole_minutes_once_the_last_one_is_complete(cw: Stubbed) -> None:
    # Weights verified 17 s into a minute: that minute mixes traffic from before the shift,
    # and a minute is complete only metrics_lag (2m by default) after it ends.
    measure = aws_measure(verified_at=T + 17)
    assert (measure.since, measure.until) == (T + 60, T + 180)
    assert not_before(measure) == T + 180 + 120

    cw.stub.add_response("get_metric_data", answer(requests=240, target_5xx=3), None)
    measured = alb_metrics(cw, FakeClock(not_before(measure))).measure(
        Slot.GREEN, measure.since, measure.until
    )

    (request,) = cw.requests
    assert request["StartTime"] == dt.datetime.fromtimestamp(T + 60, tz=dt.UTC)
    assert request["EndTime"] == dt.datetime.fromtimestamp(T + 180, tz=dt.UTC)
    assert {q["MetricStat"]["Period"] for q in request["MetricDataQueries"]} == {120}  # one datapoint
    assert (measured.requests, measured.errors) == (240, 3)


def test_the_error_count_includes_connections_the_targets_refused(cw: Stubbed) -> None:
    cw.stub.add_response("get_metric_data", answer(requests=100, target_5xx=0, refused=100), None)

    measured = alb_metrics(cw, FakeClock(T + 600)).measure(Slot.GREEN, T, T + 60)

    assert cw.dimensions("connection_errors") == {
        "LoadBalancer": LB,
        "TargetGroup": "targetgroup/orders-green/2b",
    }
    assert (measured.requests, measured.errors) == (100, 100)
    assert assess(AnalysisSpec(), measured, None).outcome is Outcome.FAILED


def test_a_throttled_read_is_retried_on_the_clock_then_succeeds(cw: Stubbed) -> None:
    clock = FakeClock(T + 600)
    cloudwatch_throttled(cw.stub)
    cloudwatch_throttled(cw.stub)
    cw.stub.add_response("get_metric_data", answer(requests=80, p95=0.2), None)

    measured = alb_metrics(cw, clock).measure(Slot.GREEN, T, T + 60)

    assert (measured.requests, measured.p95_ms, measured.p95_upper_bound) == (80, 200.0, False)
    assert len(cw.requests) == 3 and clock.slept > 0  # backoff on the injected clock
    assert all(stats["latency"] == "p95" for stats in map(cw.stats, range(3)))


def test_on_aws_a_failing_p95_read_is_an_error_and_never_a_downgrade(cw: Stubbed) -> None:
    metrics = alb_metrics(cw, FakeClock(T + 600))
    for _ in range(ATTEMPTS):
        cw.stub.add_client_error(
            "get_metric_data", service_error_code="InternalServiceError", http_status_code=500
        )
    cw.stub.add_response("get_metric_data", answer(requests=80, p95=0.3), None)

    with pytest.raises(TransientPlatformError):
        metrics.measure(Slot.GREEN, T, T + 60)
    later = metrics.measure(Slot.GREEN, T + 60, T + 120)

    assert cw.stats()["latency"] == "p95" and metrics.latency_stat == "p95"
    assert (later.p95_ms, later.p95_upper_bound) == (300.0, False)


def lambda_metrics(cw: Stubbed, versions: dict[Slot, str], api_id: str | None = "a1b2c3") -> LambdaMetrics:
    class Versions(SlotVersions):
        def version(self, slot: Slot) -> str | None:
            return versions.get(slot)

    api = LambdaApi(cw.session.client("lambda"), "orders-prod")
    return LambdaMetrics(
        cw.cloudwatch,
        api,
        slots=Versions(api),
        sleep=FakeClock().sleep,
        api_id=lambda: api_id,
        routes=("ANY /orders/{proxy+}",),
    )


def test_lambda_throttles_and_route_5xx_are_read_where_aws_records_them(cw: Stubbed) -> None:
    at = dt.datetime.fromtimestamp(T, tz=dt.UTC)
    cw.stub.add_response(
        "get_metric_data",
        metric_data(
            {
                "inv": [90.0],
                "err": [0.0],
                "dur": [120.0],
                "alias_inv": [900.0],
                "alias_err": [2.0],
                "alias_thr": [100.0],
                "http_5xx_0": [302.0],
            },
            at,
        ),
        {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY},
    )

    m = lambda_metrics(cw, {Slot.GREEN: "7"}).measure(Slot.GREEN, T, T + 60)

    assert "ExecutedVersion" not in cw.dimensions("alias_thr")
    assert cw.dimensions("alias_thr") == {"FunctionName": "orders-prod", "Resource": "orders-prod:live"}
    assert cw.dimensions("inv")["ExecutedVersion"] == "7"
    assert cw.dimensions("http_5xx_0") == {
        "ApiId": "a1b2c3",
        "Stage": "$default",
        "Route": "ANY /orders/{proxy+}",
    }
    # a tenth of the invocations: 10 of the 100 throttles, 20 of the 200 unexplained 5xx
    assert dict(m.extra)["throttles"] == 10.0 and dict(m.extra)["http_5xx"] == 20.0
    assert (m.requests, m.errors) == (100, 30)


def test_lambda_pages_are_followed(cw: Stubbed) -> None:
    at = dt.datetime.fromtimestamp(T, tz=dt.UTC)
    cw.stub.add_response("get_metric_data", metric_data({"inv": [40.0]}, at, next_token="more"), None)
    cw.stub.add_response("get_metric_data", metric_data({"inv": [20.0], "err": [6.0]}, at), None)

    m = lambda_metrics(cw, {Slot.GREEN: "7"}, api_id=None).measure(Slot.GREEN, T, T + 60)

    assert cw.requests[-1]["NextToken"] == "more"
    assert (m.requests, m.errors) == (60, 6)
