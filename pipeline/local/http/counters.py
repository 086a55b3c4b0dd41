"""Per-slot traffic counters kept in one-second buckets, so any window can be measured.

The router records every request it answers for a slot (status and latency); the Metrics
adapter asks for a window ``[since, until]`` (epoch seconds). A bucket covers
``[s, s + 1)``; every bucket that overlaps the window is counted, so the resolution is
one second. Buckets older than ``retention`` seconds are dropped.

Latency is kept as a histogram over fixed bounds (milliseconds); the 95th percentile is
interpolated linearly inside the bucket that holds it.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from dataclasses import dataclass

BOUNDS_MS: tuple[float, ...] = (
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
    1000, 1500, 2000, 3000, 5000, 10000, 30000,
)
"""Upper bounds of the latency buckets; one more bucket holds everything slower."""


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Traffic of one slot over a window: counts, and latency percentiles in milliseconds.

    ``p50_ms``/``p95_ms``/``p99_ms`` are None when the window holds no request.
    """

    requests: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
        }


class _Bucket:
    __slots__ = ("errors", "histogram", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.histogram = [0] * (len(BOUNDS_MS) + 1)


class SlotCounters:
    """Requests, 5xx responses and a latency histogram, per second. Not thread-safe:
    the plane records and reads from its one event loop."""

    def __init__(self, retention: float = 3600.0) -> None:
        self._retention = int(retention)
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()
        self.total_requests = 0
        self.total_errors = 0

    def record(self, at: float, status: int, latency_ms: float) -> None:
        """Count one answered request: ``at`` epoch seconds, ``status`` HTTP code (5xx is an error)."""
        second = math.floor(at)
        bucket = self._buckets.get(second)
        if bucket is None:
            bucket = self._buckets[second] = _Bucket()
            self._expire(second)
        bucket.requests += 1
        bucket.histogram[bisect.bisect_left(BOUNDS_MS, latency_ms)] += 1
        self.total_requests += 1
        if status >= 500:
            bucket.errors += 1
            self.total_errors += 1

    def window(self, since: float, until: float) -> WindowStats:
        """Sum of the buckets overlapping ``[since, until]``."""
        first, last = math.floor(since), math.floor(until)
        requests = errors = 0
        histogram = [0] * (len(BOUNDS_MS) + 1)
        for second, bucket in self._buckets.items():
            if first <= second <= last:
                requests += bucket.requests
                errors += bucket.errors
                for i, n in enumerate(bucket.histogram):
                    histogram[i] += n
        return WindowStats(
            requests=requests,
            errors=errors,
            p50_ms=percentile(histogram, 0.50),
            p95_ms=percentile(histogram, 0.95),
            p99_ms=percentile(histogram, 0.99),
        )

    def _expire(self, newest: int) -> None:
        while self._buckets:
            oldest = next(iter(self._buckets))
            if oldest >= newest - self._retention:
                break
            del self._buckets[oldest]


def percentile(histogram: list[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a histogram over ``BOUNDS_MS``, in ms; None if empty.

    Linear interpolation inside the bucket; the open last bucket reports its lower bound.
    """
    total = sum(histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(histogram):
        if n and seen + n >= rank:
            low = BOUNDS_MS[i - 1] if i > 0 else 0.0
            if i >= len(BOUNDS_MS):
                return float(low)
            high = BOUNDS_MS[i]
            return float(low + (high - low) * max(0.0, rank - seen) / n)
        seen += n
    return float(BOUNDS_MS[-1])


class CounterBook:
    """The counters of every (environment, service, slot), created on first use."""

    def __init__(self, retention: float = 3600.0) -> None:
        self._retention = retention
        self._counters: dict[tuple[str, str, str], SlotCounters] = {}

    def of(self, environment: str, service: str, slot: str) -> SlotCounters:
        key = (environment, service, slot)
        counters = self._counters.get(key)
        if counters is None:
            counters = self._counters[key] = SlotCounters(self._retention)
        return counters

    def peek(self, environment: str, service: str, slot: str) -> SlotCounters | None:
        return self._counters.get((environment, service, slot))
