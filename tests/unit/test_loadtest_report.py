"""The markdown summary, the result JSON, GitHub's job summary and report folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.core.errors import PlatformError
from pipeline.loadtest import LoadResult, LoadSettings, ReportPaths, Thresholds, evaluate, read_figures
from pipeline.loadtest.report import markdown, new_report_dir, write_reports

FIXTURES = Path(__file__).parent / "test_loadtest_fixtures"


def result(
    tmp_path: Path, fixture: str = "orders_single.json", thresholds: Thresholds | None = None
) -> LoadResult:
    limits = thresholds or Thresholds(fail_ratio=0.01, p95_ms=300, min_rps=10)
    settings = LoadSettings(Path("loadtests/orders.py"), users=3, spawn_rate=3, duration=2, thresholds=limits)
    figures = read_figures(FIXTURES / fixture)
    return LoadResult(
        service="orders",
        environment="staging",
        target="http://127.0.0.1:8200",
        settings=settings,
        workers=0,
        figures=figures,
        checks=evaluate(figures, limits),
        reports=ReportPaths(tmp_path / "run"),
    )


def test_summary_tables_every_check_against_its_threshold(tmp_path: Path) -> None:
    text = markdown(result(tmp_path))
    assert text.startswith("### Load test: orders @ staging — ✅ passed")
    assert "| failure ratio | 0.00% | ≤ 1.00% | ✅ pass |" in text
    assert "| p95 response time | 4 ms | ≤ 300 ms | ✅ pass |" in text
    assert "| throughput | 21.03 req/s | ≥ 10 req/s | ✅ pass |" in text
    assert "| GET /orders/\\[id\\] | 8 | 0 | 1 |" in text  # escaped: GitHub shows /orders/[id]
    assert "report.html" in text and "stats_stats.csv" in text


def test_failed_summary_lists_the_reasons(tmp_path: Path) -> None:
    failed = result(tmp_path, "orders_half_failing.json")
    text = markdown(failed)
    assert "❌ failed" in text.splitlines()[0]
    assert "| failure ratio | 43.59% | ≤ 1.00% | ❌ fail |" in text
    assert f"- {failed.reasons[0]}" in text
    assert not failed.passed and failed.headline.startswith(
        "load test of orders failed: failure ratio 43.59%"
    )


def test_reports_are_written_and_appended_to_the_github_step_summary(tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("## earlier step\n")
    first, second = result(tmp_path), result(tmp_path, "orders_half_failing.json")
    assert write_reports(first, {"GITHUB_STEP_SUMMARY": str(summary)}) == summary
    write_reports(second, {"GITHUB_STEP_SUMMARY": str(summary)})
    text = summary.read_text()
    assert text.startswith("## earlier step\n")
    assert text.count("### Load test: orders @ staging") == 2
    assert text.index("✅ passed") < text.index("❌ failed")
    assert second.reports.markdown.read_text() == markdown(second)
    saved = json.loads(second.reports.result.read_text())
    assert saved["passed"] is False and saved["figures"]["failures"] == 17
    assert saved["reports"]["html"].endswith("report.html")


def test_no_step_summary_variable_means_no_append(tmp_path: Path) -> None:
    assert write_reports(result(tmp_path), {}) is None
    assert (tmp_path / "run" / "summary.md").is_file()


def test_result_json_names_failures_only_for_failed_checks(tmp_path: Path) -> None:
    data = result(tmp_path, "orders_half_failing.json").to_dict()
    by_name = {c["name"]: c for c in data["checks"]}
    assert by_name["fail_ratio"]["passed"] is False and "43.59%" in by_name["fail_ratio"]["reason"]
    assert by_name["p95_ms"]["passed"] is True and by_name["p95_ms"]["reason"] == ""
    assert data["reasons"] == [by_name["fail_ratio"]["reason"]]


def test_each_run_gets_its_own_timestamped_folder(tmp_path: Path) -> None:
    folders = {new_report_dir(tmp_path, "orders", "dev") for _ in range(3)}
    assert len(folders) == 3 and all(f.is_dir() for f in folders)
    assert {f.parent for f in folders} == {tmp_path / "orders" / "dev"}
    assert new_report_dir(tmp_path, "orders", "").parent.name == "adhoc"


def test_an_unwritable_step_summary_is_a_platform_error(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="cannot write the load test report") as exc:
        write_reports(result(tmp_path), {"GITHUB_STEP_SUMMARY": str(tmp_path / "missing" / "summary.md")})
    assert "GITHUB_STEP_SUMMARY" in exc.value.hint
