"""Per-version metrics in one-second buckets (pure: no processes, no network)."""

from __future__ import annotations

import pytest

from pipeline.local.lambda_.metrics import MetricsBook
from pipeline.local.series import MAX_BUCKETS, LatencyHistogram

T0 = 1_700_000_000.0


def test_a_window_sums_the_buckets_it_overlaps_per_version() -> None:
    book = MetricsBook()
    book.record("orders", "1", T0 + 0.2, duration_ms=10.0, cold_start=True)
    book.record("orders", "1", T0 + 1.5, duration_ms=20.0, error=True)
    book.record("orders", "1", T0 + 1.7, throttled=True)
    book.record("orders", "2", T0 + 1.1, duration_ms=99.0)
    book.record("orders", "1", T0 + 5.0, duration_ms=30.0)
    w = book.window("orders", "1", T0 + 0.5, T0 + 2.0)  # overlaps seconds T0 and T0+1
    assert (w.invocations, w.errors, w.throttles, w.cold_starts) == (2, 1, 1, 1)
    assert w.duration_p95_ms == pytest.approx(20.0, rel=0.01)
    assert book.window("orders", "1", T0 + 2.0, T0 + 5.0).invocations == 0  # [since, until): T0+5 excluded
    assert book.window("orders", "2", T0, T0 + 10).invocations == 1
    assert book.window("orders", "3", T0, T0 + 10).duration_p95_ms is None


def _histogram(values: list[float]) -> LatencyHistogram:
    histogram = LatencyHistogram()
    for value in values:
        histogram.add(value)
    return histogram


def test_p95_is_the_nearest_rank() -> None:
    assert _histogram([float(i) for i in range(1, 101)]).percentile(0.95) == pytest.approx(95.0, rel=0.01)
    assert _histogram([5.0]).percentile(0.95) == 5.0
    assert LatencyHistogram().percentile(0.95) is None


def test_old_buckets_are_dropped_after_the_retention() -> None:
    book = MetricsBook(retention=10.0)
    book.record("orders", "1", T0, duration_ms=1.0)
    book.record("orders", "1", T0 + 30, duration_ms=1.0)
    assert book.window("orders", "1", T0 - 1, T0 + 60).invocations == 1


def test_counts_stay_exact_and_memory_bounded_under_load() -> None:
    book = MetricsBook()
    for i in range(6000):
        book.record("orders", "1", T0 + 0.5, duration_ms=float(i % 100))
    w = book.window("orders", "1", T0, T0 + 1)
    assert w.invocations == 6000
    assert w.duration_p95_ms is not None and 90.0 <= w.duration_p95_ms <= 99.0
    histogram = _histogram([float(i % 100) for i in range(6000)])
    assert len(histogram.buckets) <= MAX_BUCKETS
