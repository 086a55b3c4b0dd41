"""Alarm gates as CloudWatch really answers DescribeAlarms (Stubber; the test endpoint has no
composite alarms).

AWS: without ``AlarmTypes`` only metric alarms come back; answers page at ``MaxRecords``
(default 50) with a ``NextToken``; at most 100 names per call; a name that matches no alarm
is silently absent
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html).
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from pipeline.aws.alarms import firing_alarms
from pipeline.core.errors import NotFoundError, PlatformError
from tests.adapters.support.aws_responses import composite_alarm, describe_alarms, metric_alarm

TYPES = ["MetricAlarm", "CompositeAlarm"]


@pytest.fixture
def cloudwatch() -> Iterator[tuple[object, Stubber]]:
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    ).client("cloudwatch")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def test_a_composite_alarm_in_alarm_is_a_firing_gate(cloudwatch: tuple[object, Stubber]) -> None:
    client, stub = cloudwatch
    stub.add_response(
        "describe_alarms",
        describe_alarms(
            [metric_alarm("orders-5xx", "OK")],
            (
                composite_alarm(
                    "orders-health", "ALARM", 'ALARM("orders-5xx") OR ALARM("orders-p99")', "p99 high"
                ),
            ),
        ),
        {"AlarmNames": ["orders-5xx", "orders-health"], "AlarmTypes": TYPES},
    )

    firing = firing_alarms(client, ["orders-5xx", "orders-health"])

    assert [(a.name, a.reason) for a in firing] == [("orders-health", "p99 high")]


def test_every_page_of_the_answer_is_read(cloudwatch: tuple[object, Stubber]) -> None:
    client, stub = cloudwatch
    names = [f"orders-{i:02d}" for i in range(60)]
    stub.add_response(
        "describe_alarms",
        describe_alarms([metric_alarm(n, "OK") for n in names[:50]], next_token="page-2"),
        {"AlarmNames": names, "AlarmTypes": TYPES},
    )
    stub.add_response(
        "describe_alarms",
        describe_alarms([metric_alarm(n, "ALARM" if n == "orders-57" else "OK") for n in names[50:]]),
        {"AlarmNames": names, "AlarmTypes": TYPES, "NextToken": "page-2"},
    )

    assert [a.name for a in firing_alarms(client, names)] == ["orders-57"]


def test_names_are_asked_for_at_most_100_at_a_time(cloudwatch: tuple[object, Stubber]) -> None:
    client, stub = cloudwatch
    names = [f"alarm-{i:03d}" for i in range(130)]
    for chunk in (names[:100], names[100:]):
        stub.add_response(
            "describe_alarms",
            describe_alarms([metric_alarm(n, "OK") for n in chunk]),
            {"AlarmNames": chunk, "AlarmTypes": TYPES},
        )

    assert firing_alarms(client, names) == []


def test_a_configured_alarm_that_does_not_exist_fails_with_its_name(
    cloudwatch: tuple[object, Stubber],
) -> None:
    client, stub = cloudwatch
    stub.add_response(
        "describe_alarms",
        describe_alarms([metric_alarm("orders-5xx", "OK")]),  # "orders-latncy": silently absent
        {"AlarmNames": ["orders-5xx", "orders-latncy"], "AlarmTypes": TYPES},
    )

    with pytest.raises(NotFoundError) as caught:
        firing_alarms(client, ["orders-5xx", "orders-latncy"])

    assert "CloudWatch has no alarm 'orders-latncy'" in caught.value.message
    assert "alarms:" in caught.value.hint and "describe-alarms" in caught.value.hint


def test_a_denied_describe_is_an_error_not_an_open_gate(cloudwatch: tuple[object, Stubber]) -> None:
    client, stub = cloudwatch
    stub.add_client_error(
        "describe_alarms",
        service_error_code="AccessDenied",
        service_message="User is not authorized to perform: cloudwatch:DescribeAlarms",
        http_status_code=403,
    )

    with pytest.raises(PlatformError) as caught:
        firing_alarms(client, ["orders-5xx"])

    assert "could not read the states of alarms orders-5xx" in caught.value.message
