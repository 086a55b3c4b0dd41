"""``LambdaMetrics``: the Metrics port from CloudWatch's Lambda metrics by executed version.

Lambda publishes ``Invocations``, ``Errors``, ``Throttles`` and ``Duration`` under the
dimensions ``FunctionName``, ``Resource`` (``function:alias``) and ``ExecutedVersion``. A
slot's traffic is the traffic its version executed through the live alias, read with
one ``get_metric_data`` call:

- requests = Invocations + Throttles (a throttled request never counts as an invocation),
- errors = Errors + Throttles,
- p95_ms = the p95 of Duration over the window (the largest per-period p95 when the
  window spans several periods); endpoints without percentiles (moto) fall back to the
  Maximum, which is never lower than the p95, and ``p95_upper_bound`` says so.

No datapoints means requests = 0: the core's analysis turns that into Inconclusive, never
Successful. CloudWatch alarms named in ``alarm_names`` are gates: each one in ALARM is
named in ``Measurement.alarms`` as ``<name> (<reason>)``, which the core's analysis
turns into a Failed verdict naming the alarm, whatever the traffic.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws.alarms import firing_alarms
from pipeline.aws.errors import aws_errors
from pipeline.aws.lambda_.api import LambdaApi, error_code
from pipeline.aws.lambda_.slots import SlotVersions
from pipeline.core.model import Measurement, Slot

__all__ = ["LambdaMetrics"]

IAM_ACTIONS: frozenset[str] = frozenset({"cloudwatch:GetMetricData"})  # alarms: pipeline.aws.alarms

NAMESPACE = "AWS/Lambda"
_COUNTS = {"inv": "Invocations", "err": "Errors", "thr": "Throttles"}


class LambdaMetrics:
    """Metrics of the versions behind ``alias`` of one function. ``period`` in seconds (>= 60)."""

    def __init__(
        self,
        cloudwatch: Any,
        api: LambdaApi,
        *,
        alias: str = "live",
        alarm_names: Sequence[str] = (),
        period: int = 60,
        slots: SlotVersions | None = None,
    ) -> None:
        self.cloudwatch = cloudwatch
        self.api = api
        self.slots = slots or SlotVersions(api)
        self.alias = alias
        self.alarm_names = tuple(alarm_names)
        self.period = period
        self._percentiles = True  # until the endpoint proves otherwise

    def measure(self, slot: Slot, since: float, until: float) -> Measurement:
        alarms = tuple(self._firing_alarms())
        version = self.slots.version(slot)
        if version is None:
            return Measurement(requests=0, errors=0, alarms=alarms)
        sums, duration, is_max = self._query(version, since, until)
        throttles = int(sums["thr"])
        extra: tuple[tuple[str, float], ...] = (
            ("throttles", float(throttles)),
            ("version", float(version)),
        )
        return Measurement(
            requests=int(sums["inv"]) + throttles,
            errors=int(sums["err"]) + throttles,
            p95_ms=duration,
            extra=extra,
            alarms=alarms,
            p95_upper_bound=is_max and duration is not None,
        )

    def duration_p95_ms(self, since: float, until: float) -> float | None:
        """p95 Duration of the live alias over all versions (for the throttling guard)."""
        _, duration, _ = self._query(None, since, until)
        return duration

    # --- internals ----------------------------------------------------------------

    def _dimensions(self, version: str | None) -> list[dict[str, str]]:
        dims = [
            {"Name": "FunctionName", "Value": self.api.function},
            {"Name": "Resource", "Value": f"{self.api.function}:{self.alias}"},
        ]
        if version is not None:
            dims.append({"Name": "ExecutedVersion", "Value": version})
        return dims

    def _queries(self, version: str | None, duration_stat: str, period: int) -> list[dict[str, Any]]:
        dims = self._dimensions(version)
        metrics = [(key, name, "Sum") for key, name in _COUNTS.items()]
        metrics.append(("dur", "Duration", duration_stat))
        return [
            {
                "Id": key,
                "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": dims},
                    "Period": period,
                    "Stat": stat,
                },
                "ReturnData": True,
            }
            for key, name, stat in metrics
        ]

    def _query(
        self, version: str | None, since: float, until: float
    ) -> tuple[dict[str, float], float | None, bool]:
        """(sums of the counts, p95 or maximum Duration in ms, whether it is the maximum)."""
        if self._percentiles:
            try:
                return (*self._fetch(version, since, until, "p95"), False)
            except ClientError as exc:
                if error_code(exc) not in ("500", "InternalFailure", "InternalServiceError"):
                    with aws_errors(f"read the CloudWatch metrics of {self.api.function}"):
                        raise
                self._percentiles = False  # this endpoint cannot compute percentiles
        with aws_errors(f"read the CloudWatch metrics of {self.api.function}"):
            return (*self._fetch(version, since, until, "Maximum"), True)

    def _fetch(
        self, version: str | None, since: float, until: float, stat: str
    ) -> tuple[dict[str, float], float | None]:
        """One period spans the whole window (when CloudWatch allows), so the p95 is the window's."""
        sums = {key: 0.0 for key in _COUNTS}
        durations: list[float] = []
        period = max(self.period, math.ceil(max(until - since, 1.0) / 60) * 60)
        kwargs: dict[str, Any] = {
            "MetricDataQueries": self._queries(version, stat, period),
            "StartTime": dt.datetime.fromtimestamp(since, tz=dt.UTC),
            "EndTime": dt.datetime.fromtimestamp(max(until, since + 1), tz=dt.UTC),
        }
        while True:
            page = self.cloudwatch.get_metric_data(**kwargs)
            for result in page.get("MetricDataResults", []):
                values = [float(v) for v in result.get("Values", [])]
                if result["Id"] == "dur":
                    durations += values
                else:
                    sums[result["Id"]] += sum(values)
            if not page.get("NextToken"):
                return sums, (max(durations) if durations else None)
            kwargs["NextToken"] = page["NextToken"]

    def _firing_alarms(self) -> list[str]:
        """Names of the configured alarms in ALARM, each with the start of its reason."""
        if not self.alarm_names:
            return []
        return [f"{a.name} ({a.reason[:120]})" for a in firing_alarms(self.cloudwatch, self.alarm_names)]
