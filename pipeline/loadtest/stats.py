"""Figures from locust's ``--json-file`` output: totals, percentiles and throughput.

Locust writes one entry per (method, name) and no "Aggregated" row, so the totals are
computed here the way locust computes its own aggregate: counts are summed, response-time
histograms are merged and percentiles read from the merged histogram with locust's
algorithm (``locust.stats.calculate_response_time_percentile``). Histogram keys are
milliseconds, rounded by locust (exact below 100 ms, to 10 ms below 1 s, to 100 ms above),
so percentiles carry that resolution. Throughput is requests divided by the measured span
(earliest ``start_time`` to latest ``last_request_timestamp``), in requests per second.

This module reads JSON only: it never imports locust.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.errors import PlatformError


@dataclass(frozen=True, slots=True)
class EndpointFigures:
    """One locust stats entry: a request name (e.g. ``/orders/[id]``) and its method."""

    method: str
    name: str
    requests: int
    failures: int
    p95_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "name": self.name,
            "requests": self.requests,
            "failures": self.failures,
            "p95_ms": self.p95_ms,
        }


@dataclass(frozen=True, slots=True)
class LoadFigures:
    """The totals of one run. Times in milliseconds, ``duration_s`` in seconds."""

    requests: int
    failures: int
    duration_s: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    endpoints: tuple[EndpointFigures, ...] = ()

    @property
    def fail_ratio(self) -> float:
        """Failed / all requests; 0.0 when nothing was sent (gates treat that case apart)."""
        return self.failures / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "fail_ratio": self.fail_ratio,
            "duration_s": self.duration_s,
            "rps": self.rps,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "endpoints": [e.to_dict() for e in self.endpoints],
        }


def percentile(histogram: Mapping[int, int], fraction: float) -> float:
    """The response time (ms) that ``fraction`` (0..1) of the requests finished within.

    Same walk as locust: from the slowest bucket down until no more than
    ``int(total * fraction)`` requests remain. 0.0 for an empty histogram.
    """
    total = sum(histogram.values())
    wanted = int(total * fraction)
    seen = 0
    for bucket in sorted(histogram, reverse=True):
        seen += histogram[bucket]
        if total - seen <= wanted:
            return float(bucket)
    return 0.0


def figures_from_stats(entries: Sequence[Mapping[str, Any]]) -> LoadFigures:
    """Aggregate locust's per-endpoint stats entries (the parsed ``--json-file``).

    Raises ``ValueError`` (or ``KeyError``/``TypeError``) when an entry lacks the fields
    locust writes; ``read_figures`` turns that into a ``PlatformError``.
    """
    merged: dict[int, int] = {}
    endpoints: list[EndpointFigures] = []
    starts: list[float] = []
    ends: list[float] = []
    max_ms = 0.0
    for entry in entries:
        histogram = {int(float(k)): int(v) for k, v in entry["response_times"].items()}
        for bucket, count in histogram.items():
            merged[bucket] = merged.get(bucket, 0) + count
        requests, failures = int(entry["num_requests"]), int(entry["num_failures"])
        endpoints.append(
            EndpointFigures(
                str(entry["method"]), str(entry["name"]), requests, failures, percentile(histogram, 0.95)
            )
        )
        starts.append(float(entry["start_time"]))
        if entry.get("last_request_timestamp"):
            ends.append(float(entry["last_request_timestamp"]))
        max_ms = max(max_ms, float(entry.get("max_response_time") or 0.0))
    requests = sum(e.requests for e in endpoints)
    duration = max(0.0, max(ends) - min(starts)) if ends and starts else 0.0
    return LoadFigures(
        requests=requests,
        failures=sum(e.failures for e in endpoints),
        duration_s=round(duration, 3),
        rps=round(requests / duration, 2) if duration > 0 else 0.0,
        p50_ms=percentile(merged, 0.50),
        p95_ms=percentile(merged, 0.95),
        p99_ms=percentile(merged, 0.99),
        max_ms=round(max_ms, 1),
        endpoints=tuple(sorted(endpoints, key=lambda e: (e.name, e.method))),
    )


def read_figures(path: Path) -> LoadFigures:
    """Figures from a ``--json-file`` output file; ``PlatformError`` if it is missing or
    not what locust writes."""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            raise ValueError(f"expected a list of stats entries, found {type(data).__name__}")
        return figures_from_stats(data)
    except FileNotFoundError as exc:
        raise PlatformError(
            f"locust wrote no statistics: {path} does not exist",
            hint="read locust.log next to it: the locustfile may have failed to import",
        ) from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PlatformError(
            f"cannot read locust statistics {path}: {exc}",
            hint="the file is not locust --json-file output; run the load test again",
        ) from exc


@dataclass(frozen=True, slots=True)
class FailureSample:
    """One kind of failure locust saw: where, what, how often."""

    method: str
    name: str
    error: str
    occurrences: int

    def describe(self) -> str:
        return f"{self.method} {self.name}: {self.error} ({self.occurrences}x)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "name": self.name,
            "error": self.error,
            "occurrences": self.occurrences,
        }


_WRAPPED = re.compile(r"^\w+\((['\"])(.*)\1\)$", re.DOTALL)


def read_failure_samples(path: Path, limit: int = 5) -> tuple[FailureSample, ...]:
    """The most frequent failures in locust's ``<prefix>_failures.csv``, most frequent first.

    Diagnostics only, never gated: locust writes this file periodically, so its counts can
    lag the JSON totals. A missing or unreadable file gives ``()``.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        samples = [
            FailureSample(row["Method"], row["Name"], _unwrap(row["Error"]), int(row["Occurrences"]))
            for row in rows
        ]
    except (OSError, KeyError, ValueError, TypeError):
        return ()
    return tuple(sorted(samples, key=lambda s: -s.occurrences)[:limit])


def _unwrap(error: str) -> str:
    """``CatchResponseError('HTTP 404, expected 200')`` -> ``HTTP 404, expected 200``."""
    match = _WRAPPED.fullmatch(error.strip())
    return match.group(2) if match else error.strip()
