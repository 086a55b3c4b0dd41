"""Per-slot traffic counters: requests, 5xx responses and latencies in one ``PerSecondSeries``.

The router records every request it answers for a slot (status and latency); the Metrics
adapter asks for a window ``[since, until)`` (epoch seconds) at one-second resolution.
Percentiles follow the series' one rule (nearest rank, within 1% of the exact value): see
``pipeline.local.series``.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from pipeline.local.series import PerSecondSeries


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


class SlotCounters:
    """Requests, 5xx responses and latencies of one slot, per second. Thread-safe: the data
    plane's loop records while the control API's loop reads windows.

    Recording is one append to a deque (atomic, no lock): the router pays for it on every
    request. The appended answers are added to the series, under the lock, by whoever reads
    (``window``, the totals) and by the recorder itself every ``_FOLD_EVERY`` answers."""

    _FOLD_EVERY = 64  # small folds: a large one would pause the router's loop for a millisecond

    def __init__(self, retention: float = 3600.0) -> None:
        self._series = PerSecondSeries(("requests", "errors"), retention)
        self._lock = threading.Lock()
        self._pending: deque[tuple[float, int, float]] = deque()
        self._total_requests = 0
        self._total_errors = 0

    def record(self, at: float, status: int, latency_ms: float) -> None:
        """Count one answered request: ``at`` epoch seconds, ``status`` HTTP code (5xx is an error)."""
        pending = self._pending
        pending.append((at, status, latency_ms))
        if len(pending) >= self._FOLD_EVERY:
            self._fold()

    @property
    def total_requests(self) -> int:
        self._fold()
        return self._total_requests

    @property
    def total_errors(self) -> int:
        self._fold()
        return self._total_errors

    def _fold(self) -> None:
        """Move the pending answers into the series (each taken exactly once: popleft is atomic),
        a second at a time."""
        pending = self._pending
        with self._lock:
            latencies: list[float] = []
            second, errors = -1, 0
            while pending:
                try:
                    at, status, latency_ms = pending.popleft()
                except IndexError:
                    break
                if int(at) != second:
                    self._add(second, latencies, errors)
                    second, latencies, errors = int(at), [], 0
                latencies.append(latency_ms)
                errors += status >= 500
            self._add(second, latencies, errors)

    def _add(self, second: int, latencies: list[float], errors: int) -> None:
        if latencies:
            self._series.record_second(second, latencies, requests=len(latencies), errors=errors)
            self._total_requests += len(latencies)
            self._total_errors += errors

    def window(self, since: float, until: float) -> WindowStats:
        """Sums over the seconds overlapping ``[since, until)``."""
        self._fold()
        with self._lock:
            window = self._series.window(since, until)
        return WindowStats(
            requests=window.count("requests"),
            errors=window.count("errors"),
            p50_ms=window.percentile(0.50),
            p95_ms=window.percentile(0.95),
            p99_ms=window.percentile(0.99),
        )


class CounterBook:
    """The counters of every (environment, service, slot), created on first use."""

    def __init__(self, retention: float = 3600.0) -> None:
        self._retention = retention
        self._counters: dict[tuple[str, str, str], SlotCounters] = {}

    def of(self, environment: str, service: str, slot: str) -> SlotCounters:
        key = (environment, service, slot)
        counters = self._counters.get(key)
        if counters is None:  # setdefault: the two loops may create the same key at once
            counters = self._counters.setdefault(key, SlotCounters(self._retention))
        return counters

    def peek(self, environment: str, service: str, slot: str) -> SlotCounters | None:
        return self._counters.get((environment, service, slot))
