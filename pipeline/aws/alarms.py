"""The CloudWatch alarms of a service that are firing: one reader for ECS and Lambda.

Both metrics adapters (``pipeline.aws.alb.metrics`` and ``pipeline.aws.lambda_.metrics``)
fail an analysis while one of the service's configured alarms is in ALARM. AWS behaviours
this reader is written against
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html):

- without ``AlarmTypes`` DescribeAlarms returns metric alarms only, so a composite alarm
  would never be seen: both types are asked for;
- it returns at most ``MaxRecords`` (default 50) alarms per page with a ``NextToken``, and
  takes at most 100 names per call: names go 100 at a time and every page is read;
- a name that matches no alarm is silently absent from the answer: a configured alarm that
  does not exist (a typo, another region or account) raises ``NotFoundError`` instead of
  quietly removing a gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.aws.errors import aws_errors
from pipeline.core.errors import NotFoundError

__all__ = ["ALARM_TYPES", "IAM_ACTIONS", "FiringAlarm", "firing_alarms"]

IAM_ACTIONS: frozenset[str] = frozenset({"cloudwatch:DescribeAlarms"})
NAMES_PER_CALL = 100  # the AlarmNames limit of DescribeAlarms
ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]


@dataclass(frozen=True, slots=True)
class FiringAlarm:
    """An alarm in ALARM, and CloudWatch's reason for the state."""

    name: str
    reason: str = ""


def firing_alarms(cloudwatch: Any, names: Sequence[str]) -> list[FiringAlarm]:
    """Those of ``names`` in ALARM now (``cloudwatch`` is a boto3 CloudWatch client).

    NotFoundError naming every configured alarm that does not exist."""
    found: dict[str, dict[str, Any]] = {}
    wanted = list(dict.fromkeys(names))
    for start in range(0, len(wanted), NAMES_PER_CALL):
        for alarm in _describe(cloudwatch, wanted[start : start + NAMES_PER_CALL]):
            found[str(alarm["AlarmName"])] = alarm
    missing = [name for name in wanted if name not in found]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise NotFoundError(
            f"CloudWatch has no alarm {listed}: the analysis cannot use it as a gate",
            hint="check the alarm names under `alarms:` in the service's service.yaml against "
            "`aws cloudwatch describe-alarms` in the environment's account and region, or create them",
        )
    return [
        FiringAlarm(name, str(found[name].get("StateReason", "")))
        for name in wanted
        if found[name].get("StateValue") == "ALARM"
    ]


def _describe(cloudwatch: Any, names: list[str]) -> list[dict[str, Any]]:
    """Every metric and composite alarm among ``names``, across all pages."""
    alarms: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"AlarmNames": names, "AlarmTypes": ALARM_TYPES}
    while True:
        with aws_errors(f"read the states of alarms {', '.join(names)}"):
            page = cloudwatch.describe_alarms(**kwargs)
        alarms += page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])
        if not page.get("NextToken"):
            return alarms
        kwargs["NextToken"] = page["NextToken"]
