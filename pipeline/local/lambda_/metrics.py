"""Per-version invocation metrics per second, like CloudWatch's per-ExecutedVersion view.

Counts per second: invocations (handler ran, whatever the outcome; throttles excluded, as on
AWS), errors (function errors and timeouts), throttles, cold starts, and the durations (ms)
of the invocations, from which a window's p95 is computed. The series, its window rule
(seconds overlapping ``[since, until)``), its retention and its one percentile rule (nearest
rank, within 1% of the exact value, memory bounded under any load) are those of the router's
counters: ``pipeline.local.series``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.local.series import PerSecondSeries

COUNTS = ("invocations", "errors", "throttles", "cold_starts")


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
    """One series per (function, version), keyed by the epoch second an invocation started in."""

    def __init__(self, retention: float = 3600.0) -> None:
        self._retention = retention
        self._series: dict[tuple[str, str], PerSecondSeries] = {}

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
        series = self._series.get((function, version))
        if series is None:
            series = self._series[(function, version)] = PerSecondSeries(COUNTS, self._retention)
        if throttled:
            series.record(ts, throttles=1)
            return
        series.record(ts, duration_ms, invocations=1, errors=int(error), cold_starts=int(cold_start))

    def window(self, function: str, version: str, since: float, until: float) -> MetricsWindow:
        """Sums over the seconds overlapping ``[since, until)`` (epoch seconds)."""
        series = self._series.get((function, version)) or PerSecondSeries(COUNTS)
        window = series.window(since, until)
        return MetricsWindow(
            function=function,
            version=version,
            since=since,
            until=until,
            invocations=window.count("invocations"),
            errors=window.count("errors"),
            throttles=window.count("throttles"),
            cold_starts=window.count("cold_starts"),
            duration_p95_ms=window.percentile(0.95),
        )
