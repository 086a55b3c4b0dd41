"""``MetricReader``: GetMetricData as the analysis reads it, for ALB, Lambda and API Gateway.

One call (paginated) reads every query of a measurement over ``[since, until)`` with one
period spanning the whole window, so a percentile is the window's, not a per-minute one.
Callers pass whole-minute windows (``pipeline.core.analysis.analysis_window``): CloudWatch
rounds ``StartTime`` down to the period and ALB, Lambda and API Gateway publish 60-second
aggregates
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html).

Failures:

- Throttling, HTTP 5xx, timeouts and dropped connections are retried with backoff on the
  injected clock (``ATTEMPTS`` calls in all, on top of botocore's own retries), then
  raised as ``TransientPlatformError``: the analysis counts a provider error and measures
  again; it never changes what it measures.
- ``percentile_fallback`` is for a test endpoint only (the local AWS stand-in answers a
  percentile statistic with HTTP 500). When it is on and a query with a percentile is
  refused, the reader reads ``Maximum`` instead from then on and says so
  (``Reading.upper_bound``): the maximum is never lower than the p95. On AWS it stays off:
  a refused statistic is an error, never a quieter check.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from pipeline.aws.errors import TRANSIENT, error_code, translate
from pipeline.core.errors import TransientPlatformError

__all__ = ["ATTEMPTS", "IAM_ACTIONS", "MetricQuery", "MetricReader", "Reading"]

IAM_ACTIONS: frozenset[str] = frozenset({"cloudwatch:GetMetricData"})

ATTEMPTS = 4
"""GetMetricData calls per read when CloudWatch throttles or fails (1 s, 2 s, 4 s apart)."""
FALLBACK = "Maximum"
_PERCENTILE = re.compile(r"^p\d+(\.\d+)?$")
_REFUSED = frozenset({"InvalidParameterValue", "InvalidParameterCombination", "ValidationError"})


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """One series: ``metric`` of ``namespace`` with exactly ``dimensions``, as ``stat``."""

    id: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str = "Sum"

    def request(self, period: int) -> dict[str, Any]:
        dims = [{"Name": name, "Value": value} for name, value in self.dimensions]
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {"Namespace": self.namespace, "MetricName": self.metric, "Dimensions": dims},
                "Period": period,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


@dataclass(frozen=True, slots=True)
class Reading:
    """Values per query id (absent ids: no datapoints); ``upper_bound``: percentiles were
    read as ``Maximum`` (test endpoint only)."""

    values: dict[str, list[float]]
    upper_bound: bool = False

    def total(self, ident: str) -> float:
        return sum(self.values.get(ident, ()))

    def largest(self, ident: str) -> float | None:
        found = self.values.get(ident)
        return max(found) if found else None


class MetricReader:
    """Reads ``MetricQuery`` lists through a boto3 CloudWatch ``client``; ``sleep`` is the
    injected clock's (retries never sleep on the wall clock in tests)."""

    def __init__(
        self,
        client: Any,
        *,
        sleep: Callable[[float], None],
        percentile_fallback: bool = False,
        attempts: int = ATTEMPTS,
    ) -> None:
        self.client = client
        self.sleep = sleep
        self.percentile_fallback = percentile_fallback
        self.attempts = attempts
        self.fell_back = False

    def read(self, queries: Sequence[MetricQuery], since: float, until: float, doing: str) -> Reading:
        """Every query over ``[since, until)`` (epoch seconds); PlatformError on failure."""
        queries = [self._stat(q) for q in queries]
        probing = self.percentile_fallback and any(_PERCENTILE.fullmatch(q.stat) for q in queries)
        try:
            values = self._retrying(1 if probing else self.attempts)(self._pages, queries, since, until)
        except ClientError as exc:
            if not (probing and _refused(exc)):
                raise translate(exc, doing) from exc
            self.fell_back = True  # the test endpoint has no percentiles: read the maximum
            return self.read(queries, since, until, doing)
        except BotoCoreError as exc:
            raise translate(exc, doing) from exc
        return Reading(values, upper_bound=self.fell_back)

    def _stat(self, query: MetricQuery) -> MetricQuery:
        if self.fell_back and _PERCENTILE.fullmatch(query.stat):
            return replace(query, stat=FALLBACK)
        return query

    def _retrying(self, attempts: int) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=1, min=1, max=8),
            sleep=self.sleep,
            retry=retry_if_exception(_transient),
            reraise=True,
        )

    def _pages(self, queries: Sequence[MetricQuery], since: float, until: float) -> dict[str, list[float]]:
        period = max(60, 60 * math.ceil((until - since) / 60))
        kwargs: dict[str, Any] = {
            "MetricDataQueries": [q.request(period) for q in queries],
            "StartTime": dt.datetime.fromtimestamp(since, tz=dt.UTC),
            "EndTime": dt.datetime.fromtimestamp(max(until, since + 1), tz=dt.UTC),
        }
        values: dict[str, list[float]] = {}
        while True:
            page = self.client.get_metric_data(**kwargs)
            for result in page.get("MetricDataResults", []):
                found = [float(v) for v in result.get("Values", []) if v is not None]
                values.setdefault(str(result["Id"]), []).extend(found)
            if not page.get("NextToken"):
                return values
            kwargs["NextToken"] = page["NextToken"]


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _refused(exc: ClientError) -> bool:
    return error_code(exc) in _REFUSED or _status(exc) >= 500


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        return error_code(exc) in TRANSIENT or _status(exc) >= 500
    if isinstance(exc, BotoCoreError):  # timeouts and dropped connections
        return isinstance(translate(exc, "read metrics"), TransientPlatformError)
    return False
