"""``LambdaMetrics``: the Metrics port from CloudWatch's Lambda and HTTP API metrics.

A slot's traffic is the traffic its version executed through the live alias. Lambda
publishes its metrics under ``FunctionName`` + ``Resource`` (``function:alias``) and, for
invocations through an alias, also per ``ExecutedVersion``
(https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html). A throttled
request executes no version, so ``Throttles`` is read at the alias; and an HTTP 5xx the
function *returns* (``{"statusCode": 500}``) is a successful invocation to Lambda, which
only API Gateway's ``5xx`` metric sees (dimensions ``ApiId``, ``Stage``, ``Route``: detailed
route metrics, which bootstrap turns on for the ``$default`` stage;
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-metrics.html).
One ``GetMetricData`` read gives, over ``[since, until)``:

- per version: ``Invocations``, ``Errors`` (Sums) and ``Duration`` (p95);
- per alias: ``Invocations``, ``Errors``, ``Throttles`` (Sums);
- per route of the service on the HTTP API's ``$default`` stage: ``5xx`` (Sum).

What cannot be attributed to a version (throttles, and 5xx answers that neither
``Errors`` nor ``Throttles`` explain) is charged to each version in proportion to the
invocations it executed (all of it when the alias executed nothing), rounded up:

- requests = Invocations + its share of Throttles,
- errors = Errors + its share of Throttles + its share of the unexplained 5xx (at most
  requests),
- p95_ms = the p95 of Duration over the window.

No datapoints means requests = 0: the core's analysis turns that into Inconclusive, never
Successful. Transient CloudWatch failures are retried, then raised; only
``percentile_fallback`` (a test endpoint without percentiles) reads the Maximum Duration
instead of the p95, and ``p95_upper_bound`` says so. CloudWatch alarms named in
``alarm_names`` are gates: each one in ALARM is named in ``Measurement.alarms`` as
``<name> (<reason>)``; one that does not exist raises ``NotFoundError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.aws.alarms import firing_alarms
from pipeline.aws.cloudwatch import MetricQuery, MetricReader, Reading
from pipeline.aws.lambda_.api import LambdaApi
from pipeline.aws.lambda_.slots import SlotVersions
from pipeline.core.model import Measurement, Slot

__all__ = ["LambdaMetrics"]

IAM_ACTIONS: frozenset[str] = frozenset({"cloudwatch:GetMetricData"})  # alarms: pipeline.aws.alarms

NAMESPACE = "AWS/Lambda"
API_NAMESPACE = "AWS/ApiGateway"
LIVE_STAGE = "$default"


class LambdaMetrics:
    """Metrics of the versions behind ``alias`` of one function.

    ``sleep`` is the injected clock's (retries of a throttled read); ``api_id`` finds the
    environment's HTTP API (None: no HTTP API, no 5xx to read); ``routes`` are the
    service's route keys on it."""

    def __init__(
        self,
        cloudwatch: Any,
        api: LambdaApi,
        *,
        sleep: Callable[[float], None],
        alias: str = "live",
        alarm_names: Sequence[str] = (),
        slots: SlotVersions | None = None,
        percentile_fallback: bool = False,
        api_id: Callable[[], str | None] | None = None,
        routes: Sequence[str] = (),
    ) -> None:
        self.cloudwatch = cloudwatch
        self.api = api
        self.slots = slots or SlotVersions(api)
        self.alias = alias
        self.alarm_names = tuple(alarm_names)
        self.reader = MetricReader(cloudwatch, sleep=sleep, percentile_fallback=percentile_fallback)
        self._find_api = api_id
        self._api_id: str | None = None
        self.routes = tuple(routes)

    def measure(self, slot: Slot, since: float, until: float) -> Measurement:
        alarms = tuple(self._firing_alarms())
        version = self.slots.version(slot)
        if version is None:
            return Measurement(requests=0, errors=0, alarms=alarms)
        r = self._read(self._version_queries(version) + self._alias_queries(), since, until)
        invocations = round(r.total("inv"))
        share = invocations / r.total("alias_inv") if r.total("alias_inv") > 0 else 1.0
        alias_throttles = round(r.total("alias_thr"))
        answered_5xx = sum(r.total(f"http_5xx_{i}") for i in range(len(self.routes)))
        unexplained = max(0.0, answered_5xx - r.total("alias_err") - alias_throttles)
        throttles = math.ceil(alias_throttles * share)
        http_5xx = math.ceil(unexplained * share)
        requests = invocations + throttles
        duration = r.largest("dur")
        return Measurement(
            requests=requests,
            errors=min(requests, round(r.total("err")) + throttles + http_5xx),
            p95_ms=duration,
            extra=(
                ("throttles", float(throttles)),
                ("alias_throttles", float(alias_throttles)),
                ("http_5xx", float(http_5xx)),
                ("version", float(version)),
            ),
            alarms=alarms,
            p95_upper_bound=r.upper_bound and duration is not None,
        )

    def duration_p95_ms(self, since: float, until: float) -> float | None:
        """p95 Duration of the live alias over all versions (for the throttling guard)."""
        dims = self._dimensions(None)
        query = MetricQuery("dur", NAMESPACE, "Duration", dims, "p95")
        return self._read([query], since, until).largest("dur")

    # --- internals ----------------------------------------------------------------

    def _read(self, queries: list[MetricQuery], since: float, until: float) -> Reading:
        doing = f"read the CloudWatch metrics of {self.api.function}"
        return self.reader.read(queries, since, max(until, since + 1), doing)

    def _dimensions(self, version: str | None) -> tuple[tuple[str, str], ...]:
        dims = (("FunctionName", self.api.function), ("Resource", f"{self.api.function}:{self.alias}"))
        return dims if version is None else (*dims, ("ExecutedVersion", version))

    def _version_queries(self, version: str) -> list[MetricQuery]:
        dims = self._dimensions(version)
        return [
            MetricQuery("inv", NAMESPACE, "Invocations", dims),
            MetricQuery("err", NAMESPACE, "Errors", dims),
            MetricQuery("dur", NAMESPACE, "Duration", dims, "p95"),
        ]

    def _alias_queries(self) -> list[MetricQuery]:
        dims = self._dimensions(None)
        queries = [
            MetricQuery("alias_inv", NAMESPACE, "Invocations", dims),
            MetricQuery("alias_err", NAMESPACE, "Errors", dims),
            MetricQuery("alias_thr", NAMESPACE, "Throttles", dims),
        ]
        api_id = self._http_api()
        for i, route in enumerate(self.routes if api_id else ()):
            route_dims = (("ApiId", str(api_id)), ("Stage", LIVE_STAGE), ("Route", route))
            queries.append(MetricQuery(f"http_5xx_{i}", API_NAMESPACE, "5xx", route_dims))
        return queries

    def _http_api(self) -> str | None:
        """The HTTP API's id, looked up once (None when there is none)."""
        if self._api_id is None and self._find_api is not None:
            self._api_id = self._find_api() or ""
        return self._api_id or None

    def _firing_alarms(self) -> list[str]:
        """Names of the configured alarms in ALARM, each with the start of its reason."""
        if not self.alarm_names:
            return []
        return [f"{a.name} ({a.reason[:120]})" for a in firing_alarms(self.cloudwatch, self.alarm_names)]
