"""The CloudWatch alarms of a service that are firing: one reader for ECS and Lambda.

Both metrics adapters (``pipeline.aws.alb.metrics`` and ``pipeline.aws.lambda_.metrics``)
fail an analysis while one of the service's configured alarms is in ALARM. Metric and
composite alarms both count; names are read 100 at a time (the ``DescribeAlarms`` limit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.aws.errors import aws_errors

__all__ = ["IAM_ACTIONS", "FiringAlarm", "firing_alarms"]

IAM_ACTIONS: frozenset[str] = frozenset({"cloudwatch:DescribeAlarms"})
PAGE = 100  # alarm names per DescribeAlarms call


@dataclass(frozen=True, slots=True)
class FiringAlarm:
    """An alarm in ALARM, and CloudWatch's reason for the state."""

    name: str
    reason: str = ""


def firing_alarms(cloudwatch: Any, names: Sequence[str]) -> list[FiringAlarm]:
    """Those of ``names`` in ALARM now (``cloudwatch`` is a boto3 CloudWatch client)."""
    firing: list[FiringAlarm] = []
    for start in range(0, len(names), PAGE):
        page = list(names[start : start + PAGE])
        with aws_errors(f"read the states of alarms {', '.join(page)}"):
            answer = cloudwatch.describe_alarms(AlarmNames=page, AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        for alarm in answer.get("MetricAlarms", []) + answer.get("CompositeAlarms", []):
            if alarm.get("StateValue") == "ALARM":
                firing.append(FiringAlarm(str(alarm["AlarmName"]), str(alarm.get("StateReason", ""))))
    return firing
