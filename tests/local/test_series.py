"""The one per-second series of the router and the Lambda runtime, and its percentile rule,
against exact nearest-rank percentiles of known samples (pure: no processes, no network)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from pipeline.local.series import GROWTH, MAX_BUCKETS, LatencyHistogram, PerSecondSeries, bucket_of, middle_of

T0 = 1_700_000_000.0
Shape = Callable[[random.Random, int], list[float]]
QUANTILES = (0.5, 0.9, 0.95, 0.99, 1.0)


def exact(samples: list[float], q: float) -> float:
    """The nearest-rank quantile: the ceil(q * n)-th smallest sample."""
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def lognormal(rng: random.Random, n: int) -> list[float]:
    return [rng.lognormvariate(math.log(40.0), 0.8) for _ in range(n)]


def slow_tail(rng: random.Random, n: int) -> list[float]:
    """Most requests fast, a tail between 700 and 1,000 ms (the shape that read p95 987 ms)."""
    return [rng.uniform(700.0, 1000.0) if rng.random() < 0.08 else rng.uniform(5.0, 60.0) for _ in range(n)]


def uniform(rng: random.Random, n: int) -> list[float]:
    return [rng.uniform(0.0, 2000.0) for _ in range(n)]


@pytest.mark.parametrize("shape", [lognormal, slow_tail, uniform])
def test_percentiles_are_within_one_percent_of_the_exact_nearest_rank(shape: Shape) -> None:
    rng = random.Random(9)
    samples = shape(rng, 20_000)
    series = PerSecondSeries(("requests",))
    for i, latency in enumerate(samples):
        series.record(T0 + i / 1000.0, latency, requests=1)  # spread over 20 seconds
    window = series.window(T0, T0 + 20)
    assert window.count("requests") == len(samples)
    for q in QUANTILES:
        assert window.percentile(q) == pytest.approx(exact(samples, q), rel=0.01), q


def test_a_window_of_a_slow_tail_reads_the_p95_the_clients_saw() -> None:
    samples = [50.0] * 900 + [700.0 + i for i in range(100)]  # exact p95 = 750 ms (the 950th)
    histogram = LatencyHistogram()
    for latency in samples:
        histogram.add(latency)
    p95 = histogram.percentile(0.95)
    assert p95 is not None
    assert abs(p95 - exact(samples, 0.95)) / exact(samples, 0.95) <= 0.05


def test_buckets_are_at_most_two_percent_wide_and_report_their_middle() -> None:
    for latency in (0.37, 1.0, 8.5, 808.0, 987.0, 29_999.0):
        index = bucket_of(latency)
        low, high = middle_of(index) / math.sqrt(GROWTH), middle_of(index) * math.sqrt(GROWTH)
        assert low <= latency * (1 + 1e-9) and latency < high * (1 + 1e-9)
        assert high / low == pytest.approx(GROWTH)


def test_memory_per_second_is_bounded_by_the_buckets_not_the_request_rate() -> None:
    rng = random.Random(3)
    histogram = LatencyHistogram()
    for latency in lognormal(rng, 100_000):
        histogram.add(latency)
    assert histogram.count == 100_000
    assert len(histogram.buckets) < 1_000 <= MAX_BUCKETS
    histogram.add(0.0)
    histogram.add(10**9)
    assert len(histogram.buckets) <= MAX_BUCKETS


def test_windows_count_each_second_once_and_old_seconds_expire() -> None:
    series = PerSecondSeries(("requests", "errors"), retention=60)
    series.record(T0 + 0.5, 10.0, requests=1)
    series.record(T0 + 1.5, 20.0, requests=1, errors=1)
    first, second = series.window(T0, T0 + 1), series.window(T0 + 1, T0 + 2)
    assert (first.count("requests"), second.count("requests"), second.count("errors")) == (1, 1, 1)
    assert first.percentile(1.0) == 10.0
    series.record(T0 + 100, 30.0, requests=1)
    assert series.window(T0 - 10, T0 + 200).count("requests") == 1


def test_an_undeclared_counter_is_refused() -> None:
    with pytest.raises(KeyError):
        PerSecondSeries(("requests",)).record(T0, requests=1, typo=1)
