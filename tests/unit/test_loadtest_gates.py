"""Figures and gates from recorded locust ``--json-file`` outputs (real runs against orders).

Fixtures in ``test_loadtest_fixtures/``: ``orders_single.json`` (one process, no failures),
``orders_distributed.json`` (the master of a 2-worker run), ``orders_half_failing.json``
(a release with ``FAIL_RATE=0.5``: half of the ``/orders*`` requests answer 500) and
``catalog_not_deployed_failures.csv`` (locust's failures CSV of a run against a router
without the catalog service: every request answered 404).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.core.errors import PlatformError
from pipeline.loadtest import (
    Thresholds,
    evaluate,
    figures_from_stats,
    percentile,
    read_failure_samples,
    read_figures,
)

FIXTURES = Path(__file__).parent / "test_loadtest_fixtures"


def entries(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text())
    return data


def test_totals_sum_every_endpoint_of_the_recorded_run() -> None:
    figures = read_figures(FIXTURES / "orders_single.json")
    raw = entries("orders_single.json")
    assert figures.requests == sum(e["num_requests"] for e in raw) == 36
    assert figures.failures == 0 and figures.fail_ratio == 0.0
    assert {e.name for e in figures.endpoints} == {
        "/orders",
        "/orders/[id]",
        "/orders/health",
        "/orders?limit=20",
    }


def test_throughput_is_requests_over_the_measured_span() -> None:
    raw = entries("orders_single.json")
    span = max(e["last_request_timestamp"] for e in raw) - min(e["start_time"] for e in raw)
    figures = figures_from_stats(raw)
    assert figures.duration_s == pytest.approx(span, abs=0.001)
    assert figures.rps == pytest.approx(36 / span, abs=0.01)


def test_percentiles_come_from_the_merged_histograms() -> None:
    raw = entries("orders_single.json")
    merged: dict[int, int] = {}
    for entry in raw:
        for bucket, count in entry["response_times"].items():
            merged[int(bucket)] = merged.get(int(bucket), 0) + count
    figures = figures_from_stats(raw)
    assert figures.p95_ms == percentile(merged, 0.95)
    assert figures.p50_ms <= figures.p95_ms <= figures.p99_ms
    assert sum(1 for ms, n in merged.items() for _ in range(n) if ms <= figures.p95_ms) >= 0.95 * 36


@pytest.mark.parametrize(
    ("histogram", "fraction", "expected"),
    [
        ({1: 90, 50: 10}, 0.95, 50.0),  # 90 fast, 10 slow: the 95th is slow
        ({1: 96, 50: 4}, 0.95, 1.0),  # only 4% slow
        ({7: 1}, 0.5, 7.0),
        ({}, 0.95, 0.0),
        ({2: 50, 3: 50}, 0.5, 3.0),  # locust stops once at most int(n * f) requests are faster
    ],
)
def test_percentile_walks_from_the_slowest_bucket_like_locust(
    histogram: dict[int, int], fraction: float, expected: float
) -> None:
    assert percentile(histogram, fraction) == expected


def test_half_failing_release_fails_the_fail_ratio_gate_with_the_counts() -> None:
    figures = read_figures(FIXTURES / "orders_half_failing.json")
    assert (figures.requests, figures.failures) == (39, 17)
    checks = evaluate(figures, Thresholds(fail_ratio=0.01))
    failed = [c for c in checks if not c.passed]
    assert [c.name for c in failed] == ["fail_ratio"]
    assert failed[0].reason == "failure ratio 43.59% (17 of 39 requests) is above the 1.00% limit"


def test_distributed_master_output_is_gated_like_a_single_run() -> None:
    figures = read_figures(FIXTURES / "orders_distributed.json")
    assert figures.requests == 47 and figures.failures == 0
    checks = evaluate(figures, Thresholds(fail_ratio=0.01, p95_ms=200, min_rps=5))
    assert all(c.passed for c in checks) and len(checks) == 4


def test_impossible_latency_and_throughput_limits_fail_with_reasons() -> None:
    figures = read_figures(FIXTURES / "orders_single.json")
    checks = evaluate(figures, Thresholds(p95_ms=0.001, min_rps=1_000_000))
    reasons = [c.reason for c in checks if not c.passed]
    assert reasons == [
        "p95 response time 4 ms is above the 0.001 ms limit",
        f"throughput {figures.rps:g} req/s is below the 1e+06 req/s minimum "
        f"(36 requests in {figures.duration_s:g} s)",
    ]


def test_a_run_without_requests_fails_even_without_thresholds() -> None:
    figures = figures_from_stats([])
    checks = evaluate(figures, Thresholds())
    assert figures.requests == 0 and figures.rps == 0.0
    assert [c.passed for c in checks] == [False]
    assert "no request was made" in checks[0].reason


def test_unset_thresholds_are_not_checked() -> None:
    checks = evaluate(read_figures(FIXTURES / "orders_single.json"), Thresholds(p95_ms=100))
    assert [c.name for c in checks] == ["requests", "p95_ms"]


def test_exact_limits_pass() -> None:
    figures = read_figures(FIXTURES / "orders_single.json")
    checks = evaluate(figures, Thresholds(fail_ratio=0.0, p95_ms=figures.p95_ms, min_rps=figures.rps))
    assert all(c.passed for c in checks)


def test_missing_or_foreign_json_is_a_platform_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="locust wrote no statistics") as missing:
        read_figures(tmp_path / "stats.json")
    assert "locust.log" in missing.value.hint
    (tmp_path / "other.json").write_text('{"not": "locust"}')
    with pytest.raises(PlatformError, match="expected a list"):
        read_figures(tmp_path / "other.json")
    (tmp_path / "partial.json").write_text('[{"name": "/x"}]')
    with pytest.raises(PlatformError, match="cannot read locust statistics"):
        read_figures(tmp_path / "partial.json")


def test_thresholds_and_settings_refuse_nonsense() -> None:
    from pipeline.loadtest import LoadSettings

    with pytest.raises(ValueError, match="fail_ratio"):
        Thresholds(fail_ratio=1.5)
    with pytest.raises(ValueError, match="min_rps"):
        Thresholds(min_rps=-1)
    with pytest.raises(ValueError, match="at least 1 second"):
        LoadSettings(Path("x.py"), duration=0.5)


def test_failure_samples_come_from_the_failures_csv_most_frequent_first(tmp_path: Path) -> None:
    samples = read_failure_samples(FIXTURES / "catalog_not_deployed_failures.csv", limit=2)
    assert [s.describe() for s in samples] == [
        "GET /catalog/[id]: HTTP 404, expected 200 (45x)",
        "GET /catalog?limit=20: HTTP 404, expected 200 (22x)",
    ]
    assert read_failure_samples(tmp_path / "absent.csv") == ()
    (tmp_path / "odd.csv").write_text("Method,Name\nGET,/x\n")
    assert read_failure_samples(tmp_path / "odd.csv") == ()
