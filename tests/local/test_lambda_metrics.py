"""Per-version metrics in one-second buckets (pure: no processes, no network)."""

from __future__ import annotations

from pipeline.local.lambda_.metrics import SAMPLE, MetricsBook, percentile

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
    assert w.duration_p95_ms == 20.0
    assert book.window("orders", "1", T0 + 2.0, T0 + 5.0).invocations == 0  # [since, until): T0+5 excluded
    assert book.window("orders", "2", T0, T0 + 10).invocations == 1
    assert book.window("orders", "3", T0, T0 + 10).duration_p95_ms is None


def test_p95_is_the_nearest_rank() -> None:
    assert percentile([float(i) for i in range(1, 101)], 95.0) == 95.0
    assert percentile([5.0], 95.0) == 5.0
    assert percentile([], 95.0) is None


def test_old_buckets_are_dropped_after_the_retention() -> None:
    book = MetricsBook(retention=10.0)
    book.record("orders", "1", T0, duration_ms=1.0)
    book.record("orders", "1", T0 + 30, duration_ms=1.0)
    assert book.window("orders", "1", T0 - 1, T0 + 60).invocations == 1


def test_counts_stay_exact_when_durations_are_sampled() -> None:
    book = MetricsBook()
    for i in range(SAMPLE * 3):
        book.record("orders", "1", T0 + 0.5, duration_ms=float(i % 100))
    w = book.window("orders", "1", T0, T0 + 1)
    assert w.invocations == SAMPLE * 3
    assert w.duration_p95_ms is not None and 90.0 <= w.duration_p95_ms <= 99.0
