"""Per-version invocation metrics in one-second buckets, like CloudWatch's per-ExecutedVersion view.

Counts per bucket: invocations (handler ran, whatever the outcome; throttles excluded, as on
AWS), errors (function errors and timeouts), throttles, cold starts, and the durations (ms)
of the invocations, from which a window's p95 is computed (nearest rank). Each bucket keeps
at most ``SAMPLE`` durations (a uniform reservoir sample beyond that), so the p95 is exact
up to ``SAMPLE`` invocations per second per version and a close estimate above; the counts
are always exact.

A window ``[since, until)`` holds every bucket whose second overlaps it: the resolution is
one second. Buckets older than ``retention`` seconds are dropped as new ones are written.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

SAMPLE = 2000  # durations kept per one-second bucket

@dataclass(slots=True)
class _Bucket:
    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    cold_starts: int = 0
    durations: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MetricsWindow:
    """One version's metrics over ``[since, until)``; ``duration_p95_ms`` is None without data."""

    function: str
    version: str
    since: float
    until: float
    invocations: int
    errors: int
    throttles: int
    cold_starts: int
    duration_p95_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "version": self.version,
            "since": self.since,
            "until": self.until,
            "invocations": self.invocations,
            "errors": self.errors,
            "throttles": self.throttles,
            "cold_starts": self.cold_starts,
            "duration_p95_ms": self.duration_p95_ms,
        }


class MetricsBook:
    """Buckets per (function, version), keyed by the epoch second an invocation started in."""

    def __init__(self, retention: float = 3600.0) -> None:
        self._retention = retention
        self._rng = random.Random(0)
        self._series: dict[tuple[str, str], OrderedDict[int, _Bucket]] = {}

    def record(
        self,
        function: str,
        version: str,
        ts: float,
        *,
        throttled: bool = False,
        error: bool = False,
        cold_start: bool = False,
        duration_ms: float | None = None,
    ) -> None:
        """Count one invocation (or throttle) of ``version`` that started at epoch ``ts``."""
        series = self._series.setdefault((function, version), OrderedDict())
        second = math.floor(ts)
        bucket = series.get(second)
        if bucket is None:
            bucket = series[second] = _Bucket()
            self._trim(series, second)
        if throttled:
            bucket.throttles += 1
            return
        bucket.invocations += 1
        bucket.errors += int(error)
        bucket.cold_starts += int(cold_start)
        if duration_ms is None:
            return
        if len(bucket.durations) < SAMPLE:
            bucket.durations.append(duration_ms)
            return
        slot = self._rng.randrange(bucket.invocations)  # reservoir sampling: keep each with p = SAMPLE/n
        if slot < SAMPLE:
            bucket.durations[slot] = duration_ms

    def window(self, function: str, version: str, since: float, until: float) -> MetricsWindow:
        """Sums over the buckets overlapping ``[since, until)`` (epoch seconds)."""
        total = _Bucket()
        durations: list[float] = []
        for second, bucket in self._series.get((function, version), OrderedDict()).items():
            if second + 1 <= since or second >= until:
                continue
            total.invocations += bucket.invocations
            total.errors += bucket.errors
            total.throttles += bucket.throttles
            total.cold_starts += bucket.cold_starts
            durations.extend(bucket.durations)
        return MetricsWindow(
            function=function,
            version=version,
            since=since,
            until=until,
            invocations=total.invocations,
            errors=total.errors,
            throttles=total.throttles,
            cold_starts=total.cold_starts,
            duration_p95_ms=percentile(durations, 95.0),
        )

    def _trim(self, series: OrderedDict[int, _Bucket], newest: int) -> None:
        oldest_kept = newest - self._retention
        while series:
            second = next(iter(series))
            if second >= oldest_kept:
                break
            del series[second]


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]
