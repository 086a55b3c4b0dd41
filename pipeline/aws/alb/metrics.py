"""``CloudWatchMetrics``: the Metrics port from ALB target-group metrics and alarms.

One ``GetMetricData`` read (``pipeline.aws.cloudwatch.MetricReader``) per measurement, for
the slot's target group on the environment's ALB (dimensions ``LoadBalancer`` +
``TargetGroup``, namespace ``AWS/ApplicationELB``), over ``[since, until)``:

- ``RequestCount`` (Sum) -> ``Measurement.requests``;
- ``HTTPCode_Target_5XX_Count`` + ``TargetConnectionErrorCount`` (Sums) ->
  ``Measurement.errors``. A target that crashes or refuses connections answers nothing:
  the ALB returns 502/503 from itself, which only ``HTTPCode_ELB_5XX_Count`` counts, and
  that metric has no target-group dimension. ``TargetConnectionErrorCount`` is the
  per-target-group trace of those failures
  (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html).
  ``requests`` is never below ``errors`` (a refused connection is an answered request);
- ``TargetResponseTime`` (``p95``, seconds) -> ``Measurement.p95_ms``. Only with
  ``percentile_fallback`` (a test endpoint without percentiles) may it be the window's
  Maximum, and then ``p95_upper_bound=True``;
- with ``count_unhealthy_hosts``, ``UnHealthyHostCount`` (Maximum): any unhealthy target in
  the window fails the measurement like an alarm, named in ``Measurement.alarms``.

No datapoints means ``requests=0``: the core's analysis turns that into Inconclusive.
Transient CloudWatch failures are retried, then raised (the analysis counts an error).

Alarms are extra gates: each alarm named in ``alarm_names`` that is in state ``ALARM``
is named in ``Measurement.alarms``, which the core's analysis turns into a Failed verdict
naming the alarm, whatever the traffic. Alarms are service-wide, so a firing alarm fails
whichever slot is measured. That costs one ``DescribeAlarms`` call per 50 alarms.
"""

from __future__ import annotations

from pipeline.aws.alarms import firing_alarms
from pipeline.aws.alb.rules import SlotTargetGroups
from pipeline.aws.cloudwatch import MetricQuery, MetricReader
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import target_group_dimension
from pipeline.core.model import Measurement, Slot
from pipeline.core.ports import Clock

IAM_ACTIONS: frozenset[str] = frozenset({"cloudwatch:GetMetricData"})  # alarms: pipeline.aws.alarms

NAMESPACE = "AWS/ApplicationELB"
PERCENTILE = "p95"


class CloudWatchMetrics:
    """Measurements of one ECS service's slots behind the ALB ``load_balancer``
    (``app/<name>/<id>``)."""

    def __init__(
        self,
        session: AwsSession,
        *,
        load_balancer: str,
        groups: SlotTargetGroups,
        clock: Clock,
        alarm_names: tuple[str, ...] = (),
        min_requests: int = 20,
        count_unhealthy_hosts: bool = False,
        percentile_fallback: bool = False,
    ) -> None:
        self._session = session
        self._load_balancer = load_balancer
        self._groups = groups
        self.alarm_names = alarm_names
        self.min_requests = min_requests
        self.count_unhealthy_hosts = count_unhealthy_hosts
        self.reader = MetricReader(
            session.client("cloudwatch"), sleep=clock.sleep, percentile_fallback=percentile_fallback
        )

    def measure(self, slot: Slot, since: float, until: float) -> Measurement:
        """Traffic facts of ``slot`` over ``[since, until)`` (epoch seconds). PlatformError on failure."""
        if until - since < 1:
            return Measurement(requests=0, errors=0)
        name = self._groups.names[0 if slot is Slot.BLUE else 1]
        reading = self.reader.read(self._queries(slot), since, until, f"read the metrics of {name}")
        target_5xx = round(reading.total("target_5xx"))
        refused = round(reading.total("connection_errors"))
        errors = target_5xx + refused
        latency = reading.largest("latency")
        extra = [("target_5xx", float(target_5xx)), ("connection_errors", float(refused))]
        gates = self._firing_alarms()
        unhealthy = reading.largest("unhealthy")
        if unhealthy is not None:
            extra.append(("unhealthy_hosts", unhealthy))
            if unhealthy > 0:
                gates.append(f"UnHealthyHostCount of {name} reached {unhealthy:g}")
        return Measurement(
            requests=max(round(reading.total("requests")), errors),
            errors=errors,
            p95_ms=latency * 1000.0 if latency is not None else None,
            p95_upper_bound=latency is not None and reading.upper_bound,
            extra=tuple(extra),
            alarms=tuple(gates),
        )

    @property
    def latency_stat(self) -> str:
        """``p95``, or ``Maximum`` once a test endpoint refused percentiles."""
        return "Maximum" if self.reader.fell_back else PERCENTILE

    def _queries(self, slot: Slot) -> list[MetricQuery]:
        dims = (
            ("LoadBalancer", self._load_balancer),
            ("TargetGroup", target_group_dimension(self._groups.arns().of(slot))),
        )
        queries = [
            MetricQuery("requests", NAMESPACE, "RequestCount", dims),
            MetricQuery("target_5xx", NAMESPACE, "HTTPCode_Target_5XX_Count", dims),
            MetricQuery("connection_errors", NAMESPACE, "TargetConnectionErrorCount", dims),
            MetricQuery("latency", NAMESPACE, "TargetResponseTime", dims, PERCENTILE),
        ]
        if self.count_unhealthy_hosts:
            queries.append(MetricQuery("unhealthy", NAMESPACE, "UnHealthyHostCount", dims, "Maximum"))
        return queries

    def _firing_alarms(self) -> list[str]:
        """Names of the configured alarms in ALARM (NotFoundError when one does not exist)."""
        if not self.alarm_names:
            return []
        return [a.name for a in firing_alarms(self._session.client("cloudwatch"), self.alarm_names)]


__all__ = ["CloudWatchMetrics"]
