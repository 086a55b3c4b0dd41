"""One windowed per-second series: counts and a latency histogram per epoch second.

The local router (per slot) and the local Lambda runtime (per function version) record into
a ``PerSecondSeries``; a metrics adapter asks for a window ``[since, until)`` in epoch
seconds. A second ``s`` covers ``[s, s + 1)`` and belongs to the window when it overlaps
it, so the resolution is one second and consecutive windows never count a second twice.
Seconds older than ``retention`` are dropped as newer ones are written.

Percentiles follow one rule, the *nearest rank*: the ``q`` quantile of ``n`` latencies is
the ``ceil(q * n)``-th smallest. Latencies are kept in log-spaced buckets whose bounds grow
by ``GROWTH`` (2%); a percentile reports the geometric middle of the bucket holding that
rank, clamped to the window's exact minimum and maximum, so it is within 1% of the exact
nearest-rank value whatever the distribution or the load. Why buckets and not the samples
themselves: a second's memory is bounded by the number of distinct buckets (at most
``MAX_BUCKETS``, in practice a few dozen), not by the request rate, and windows merge by
adding counts. A fixed coarse histogram (the previous router rule) could be off by a whole
bucket (p95 987 ms where clients measured 808 ms); a reservoir of samples keeps memory
proportional to its size for every second retained.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

GROWTH = 1.02
"""Ratio between a latency bucket's upper and lower bound: 2% relative width."""
FLOOR_MS = 0.001
"""Latencies below one microsecond share the lowest bucket."""
CEILING_MS = 3_600_000.0
"""Latencies above one hour share the highest bucket."""
_LOG_GROWTH = math.log(GROWTH)
_log = math.log
MAX_BUCKETS = math.ceil(math.log(CEILING_MS / FLOOR_MS) / _LOG_GROWTH) + 1
"""Upper bound of the distinct buckets one second (or one window) can hold."""


def bucket_of(latency_ms: float) -> int:
    """The index of the bucket ``[FLOOR_MS * GROWTH**i, FLOOR_MS * GROWTH**(i+1))`` holding a latency."""
    if latency_ms <= FLOOR_MS:
        return 0
    return int(_log(min(latency_ms, CEILING_MS) / FLOOR_MS) / _LOG_GROWTH)


def middle_of(index: int) -> float:
    """The geometric middle of a bucket: within ``sqrt(GROWTH) - 1`` (1%) of any value in it."""
    return FLOOR_MS * math.pow(GROWTH, index + 0.5)


class LatencyHistogram:
    """Counts per log-spaced bucket plus the exact minimum and maximum (milliseconds)."""

    __slots__ = ("buckets", "count", "maximum", "minimum")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.minimum = math.inf
        self.maximum = -math.inf

    def add(self, latency_ms: float) -> None:
        index = bucket_of(latency_ms)
        buckets = self.buckets
        buckets[index] = buckets.get(index, 0) + 1
        self.count += 1
        self.minimum = min(self.minimum, latency_ms)
        self.maximum = max(self.maximum, latency_ms)

    def add_many(self, latencies: list[float]) -> None:
        """``add`` each of ``latencies`` (one pass, for batches)."""
        if not latencies:
            return
        buckets = self.buckets
        log, floor, ceiling, growth = _log, FLOOR_MS, CEILING_MS, _LOG_GROWTH
        for latency_ms in latencies:
            index = 0 if latency_ms <= floor else int(log(min(latency_ms, ceiling) / floor) / growth)
            buckets[index] = buckets.get(index, 0) + 1
        self.count += len(latencies)
        self.minimum = min(self.minimum, *latencies)
        self.maximum = max(self.maximum, *latencies)

    def merge(self, other: LatencyHistogram) -> None:
        for index, n in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + n
        self.count += other.count
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)

    def percentile(self, q: float) -> float | None:
        """The nearest-rank ``q`` quantile (0 < q <= 1) in ms, within 1%; None when empty."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return min(max(middle_of(index), self.minimum), self.maximum)
        return self.maximum


class _Second:
    __slots__ = ("counts", "latency")

    def __init__(self, width: int) -> None:
        self.counts = [0] * width
        self.latency = LatencyHistogram()


@dataclass(frozen=True, slots=True)
class SeriesWindow:
    """The sums of a series over a window: named counts and the merged latency histogram."""

    counts: Mapping[str, int]
    latency: LatencyHistogram

    def count(self, name: str) -> int:
        return self.counts[name]

    def percentile(self, q: float) -> float | None:
        return self.latency.percentile(q)


class PerSecondSeries:
    """Named counters and latencies per epoch second. Not thread-safe: the plane records and
    reads from its one event loop.

    ``names`` are the counters this series keeps (``("requests", "errors")``); recording an
    undeclared name is a programming error (``KeyError``).
    """

    def __init__(self, names: Iterable[str], retention: float = 3600.0) -> None:
        self.names = tuple(names)
        self._index = {name: i for i, name in enumerate(self.names)}
        self._retention = int(retention)
        self._seconds: OrderedDict[int, _Second] = OrderedDict()

    def record(self, at: float, latency_ms: float | None = None, **counts: int) -> None:
        """Add ``counts`` and, when given, one latency to the second holding epoch ``at``."""
        self.record_second(math.floor(at), [latency_ms] if latency_ms is not None else [], **counts)

    def record_second(self, second: int, latencies: list[float], **counts: int) -> None:
        """Add ``counts`` and ``latencies`` to epoch second ``second`` (a batch of ``record``)."""
        bucket = self._seconds.get(second)
        if bucket is None:
            bucket = self._seconds[second] = _Second(len(self.names))
            self._expire(second)
        for name, n in counts.items():
            bucket.counts[self._index[name]] += n
        bucket.latency.add_many(latencies)

    def window(self, since: float, until: float) -> SeriesWindow:
        """Sums over the seconds overlapping ``[since, until)`` (epoch seconds)."""
        totals = [0] * len(self.names)
        latency = LatencyHistogram()
        for second, bucket in self._seconds.items():
            if second + 1 <= since or second >= until:
                continue
            for i, n in enumerate(bucket.counts):
                totals[i] += n
            latency.merge(bucket.latency)
        return SeriesWindow(dict(zip(self.names, totals, strict=True)), latency)

    def _expire(self, newest: int) -> None:
        while self._seconds:
            oldest = next(iter(self._seconds))
            if oldest >= newest - self._retention:
                break
            del self._seconds[oldest]
