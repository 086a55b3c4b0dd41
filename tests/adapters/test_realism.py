"""The realism layer itself: each behaviour it models is observable through plain boto3."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError

from pipeline.testing import FakeClock
from tests.adapters.conftest import REGION
from tests.adapters.support.realism import RealismState, StrictRequestError, violations

START = 1_700_000_040.0  # a whole minute


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


def test_task_definition_lists_come_back_in_another_order(aws: str, realism_state: RealismState) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    sent = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    registered = ecs.register_task_definition(
        family="orders",
        containerDefinitions=[{"name": "orders", "image": "x", "memory": 128, "environment": sent}],
    )["taskDefinition"]

    described = ecs.describe_task_definition(taskDefinition=registered["taskDefinitionArn"])["taskDefinition"]

    environment = described["containerDefinitions"][0]["environment"]
    assert environment != sent  # what an element-by-element comparison trips on
    assert sorted(environment, key=lambda e: e["name"]) == sent  # same content
    assert realism_state.reordered >= 2


def test_metrics_land_minutes_late_on_the_test_clock(
    aws: str, clock: FakeClock, realism_state: RealismState
) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for minute in range(10):
        cloudwatch.put_metric_data(
            Namespace="Realism",
            MetricData=[{"MetricName": "Requests", "Value": 1.0, "Unit": "Count",
                         "Timestamp": datetime.fromtimestamp(START + 60 * minute, UTC)}],
        )
    clock.t = START + 600  # ten minutes after the first datapoint

    def datapoints() -> list[datetime]:
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "r", "MetricStat": {
                "Metric": {"Namespace": "Realism", "MetricName": "Requests"}, "Period": 60, "Stat": "Sum"}}],
            StartTime=datetime.fromtimestamp(START + 30, UTC),  # rounded down to the minute
            EndTime=datetime.fromtimestamp(START + 3600, UTC),
        )
        return list(answer["MetricDataResults"][0]["Timestamps"])

    seen = datapoints()
    delay = realism_state.delay_for("r")
    assert 60 <= delay <= 180
    assert seen == sorted(seen, reverse=True)  # newest first, as CloudWatch's default ScanBy
    assert seen[0].timestamp() <= clock.now() - delay  # the last minutes are not there yet
    assert len(seen) < 10 and realism_state.hidden_datapoints > 0
    assert seen[-1].timestamp() == START  # the start was rounded down to the minute

    clock.t += 600  # later, everything has landed
    assert len(datapoints()) == 10


def test_static_credentials_expire_after_an_hour_on_the_test_clock(
    aws: str, clock: FakeClock, realism_state: RealismState
) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.list_clusters()
    clock.advance(3599)
    ecs.list_clusters()
    clock.advance(2)

    with pytest.raises(ClientError) as refused:
        ecs.list_clusters()

    assert refused.value.response["Error"]["Code"] == "ExpiredToken"
    assert realism_state.expired == ["testing"]


def test_requests_are_checked_against_the_models_limits(aws: str) -> None:
    lambda_ = boto3.client("lambda", region_name=REGION)
    with pytest.raises(StrictRequestError, match=r"AdditionalVersionWeights.2: 1.5 is above the maximum 1.0"):
        lambda_.update_alias(FunctionName="notify", Name="live", FunctionVersion="1",
                             RoutingConfig={"AdditionalVersionWeights": {"2": 1.5}})  # a percent, not a share
    sts = boto3.client("sts", region_name=REGION)
    with pytest.raises(ParamValidationError, match="does not match"):
        sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/x", RoleSessionName="has space")
    with pytest.raises(ParamValidationError, match="above the maximum 43200"):
        sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/x", RoleSessionName="ok",
                        DurationSeconds=50_000)


def test_strict_check_reads_enums_and_nested_shapes() -> None:
    model = boto3.client("ecs", region_name=REGION).meta.service_model.operation_model("CreateService")
    found = violations(model.input_shape, {"serviceName": "s", "launchType": "SPOT",
                                           "loadBalancers": [{"containerPort": 70_000}]}, "CreateService")
    assert any("launchType='SPOT' is not one of" in f for f in found)
    assert violations(model.input_shape, {"serviceName": "s", "launchType": "FARGATE"}, "CreateService") == []
