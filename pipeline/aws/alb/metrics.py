"""``CloudWatchMetrics``: the Metrics port from ALB target-group metrics and alarms.

One ``GetMetricData`` call per measurement reads, for the slot's target group on the
environment's ALB (dimensions ``LoadBalancer`` + ``TargetGroup``, namespace
``AWS/ApplicationELB``), over ``[since, until)``:

- ``RequestCount`` (Sum) -> ``Measurement.requests``;
- ``HTTPCode_Target_5XX_Count`` (Sum) -> ``Measurement.errors``;
- ``TargetResponseTime`` (``p95``, seconds) -> ``Measurement.p95_ms``. When the endpoint
  refuses percentile statistics (moto answers HTTP 500), the query is repeated once with
  ``Maximum`` and the adapter keeps using it; the measurement then says
  ``p95_upper_bound=True`` (the Maximum is never lower than the p95).

No datapoints means ``requests=0``: the core's analysis turns that into Inconclusive.

Alarms are extra gates: each alarm named in ``alarm_names`` that is in state ``ALARM``
is named in ``Measurement.alarms``, which the core's analysis turns into a
Failed verdict naming the alarm, whatever the traffic. Alarms are service-wide, so a
firing alarm fails whichever slot is measured. That costs one ``DescribeAlarms`` call.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws.alarms import firing_alarms
from pipeline.aws.alb.rules import SlotTargetGroups
from pipeline.aws.errors import aws_errors, error_code, translate
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import target_group_dimension
from pipeline.core.model import Measurement, Slot

IAM_ACTIONS: frozenset[str] = frozenset({"cloudwatch:GetMetricData"})  # alarms: pipeline.aws.alarms

NAMESPACE = "AWS/ApplicationELB"
PERCENTILE = "p95"
FALLBACK = "Maximum"
_REFUSED = frozenset({"InvalidParameterValue", "InvalidParameterCombination", "ValidationError"})


class CloudWatchMetrics:
    """Measurements of one ECS service's slots behind the ALB ``load_balancer``
    (``app/<name>/<id>``)."""

    def __init__(
        self,
        session: AwsSession,
        *,
        load_balancer: str,
        groups: SlotTargetGroups,
        alarm_names: tuple[str, ...] = (),
        min_requests: int = 20,
    ) -> None:
        self._session = session
        self._load_balancer = load_balancer
        self._groups = groups
        self.alarm_names = alarm_names
        self.min_requests = min_requests
        self.latency_stat = PERCENTILE

    def measure(self, slot: Slot, since: float, until: float) -> Measurement:
        """Traffic facts of ``slot`` over ``[since, until)`` (epoch seconds). PlatformError on failure."""
        if until - since < 1:
            return Measurement(requests=0, errors=0)
        values = self._metric_data(slot, since, until)
        requests = round(sum(values["requests"]))
        errors = round(sum(values["errors"]))
        latency = values["latency"]
        p95 = max(latency) * 1000.0 if latency else None
        return Measurement(
            requests=requests,
            errors=errors,
            p95_ms=p95,
            p95_upper_bound=p95 is not None and self.latency_stat != PERCENTILE,
            alarms=tuple(self._firing_alarms()),
        )

    def _metric_data(self, slot: Slot, since: float, until: float) -> dict[str, list[float]]:
        dimension = target_group_dimension(self._groups.arns().of(slot))
        doing = f"read the metrics of {self._groups.names[0 if slot is Slot.BLUE else 1]}"
        try:
            return self._query(dimension, since, until)
        except ClientError as exc:
            refused = error_code(exc) in _REFUSED or _status(exc) >= 500
            if self.latency_stat != PERCENTILE or not refused:
                raise translate(exc, doing) from exc
        except BotoCoreError as exc:
            raise translate(exc, doing) from exc
        self.latency_stat = FALLBACK  # the endpoint has no percentiles: use an upper bound
        with aws_errors(doing):
            return self._query(dimension, since, until)

    def _query(self, dimension: str, since: float, until: float) -> dict[str, list[float]]:
        period = max(60, 60 * math.ceil((until - since) / 60))
        dimensions = [
            {"Name": "LoadBalancer", "Value": self._load_balancer},
            {"Name": "TargetGroup", "Value": dimension},
        ]
        queries = [
            _query("requests", "RequestCount", "Sum", dimensions, period),
            _query("errors", "HTTPCode_Target_5XX_Count", "Sum", dimensions, period),
            _query("latency", "TargetResponseTime", self.latency_stat, dimensions, period),
        ]
        values: dict[str, list[float]] = {"requests": [], "errors": [], "latency": []}
        token: dict[str, str] = {}
        while True:
            answer = self._session.client("cloudwatch").get_metric_data(
                MetricDataQueries=queries,
                StartTime=datetime.fromtimestamp(since, tz=UTC),
                EndTime=datetime.fromtimestamp(until, tz=UTC),
                **token,
            )
            for result in answer["MetricDataResults"]:
                values[result["Id"]] += [float(v) for v in result.get("Values", []) if v is not None]
            if not answer.get("NextToken"):
                return values
            token = {"NextToken": answer["NextToken"]}

    def _firing_alarms(self) -> list[str]:
        """Names of the configured alarms in ALARM."""
        if not self.alarm_names:
            return []
        return [a.name for a in firing_alarms(self._session.client("cloudwatch"), self.alarm_names)]


def _query(
    ident: str, metric: str, stat: str, dimensions: list[dict[str, str]], period: int
) -> dict[str, Any]:
    return {
        "Id": ident,
        "MetricStat": {
            "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dimensions},
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
