"""Real locust runs against a real orders process on 127.0.0.1: gates, reports, workers, cleanup.

Each run is a few seconds; the assertions are about behaviour and counts, never wall time.
Every locust process must be gone when a run returns, fails, times out or is interrupted.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pipeline.cli.main import main
from pipeline.core.errors import PlatformError
from pipeline.loadtest import LoadRunner, LoadSettings, Thresholds
from tests.local.support.orders_app import LOCUSTFILE, REPO, start_orders, stop
from tests.support.loadtest_project import write_project


@pytest.fixture(scope="module")
def orders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_orders(tmp_path_factory.mktemp("orders"))
    yield url
    stop(proc)


def locust_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "locust" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def aggregated_row(csv_stats: Path) -> dict[str, str]:
    with csv_stats.open() as handle:
        return next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")


LOCUST_AGGREGATE = """
import json, sys
from locust.stats import RequestStats, StatsEntry
stats = RequestStats()
for data in json.load(open(sys.argv[1])):
    data["response_times"] = {int(k): v for k, v in data["response_times"].items()}
    data["num_reqs_per_sec"] = {int(k): v for k, v in data["num_reqs_per_sec"].items()}
    data["num_fail_per_sec"] = {int(k): v for k, v in data["num_fail_per_sec"].items()}
    stats.total.extend(StatsEntry.unserialize(data, stats))
print(stats.total.num_requests, stats.total.num_failures, stats.total.get_response_time_percentile(0.95))
"""


def locust_aggregate(stats_json: Path) -> tuple[int, int, float]:
    """Locust's own "Aggregated" figures for a --json-file output, computed by locust (in a
    subprocess: importing locust here would monkey-patch the test process)."""
    out = subprocess.run(
        [sys.executable, "-c", LOCUST_AGGREGATE, str(stats_json)], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), int(out[1]), float(out[2])


def log_says(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text()


def settings(duration: float, thresholds: Thresholds, users: int = 5) -> LoadSettings:
    return LoadSettings(LOCUSTFILE, users=users, spawn_rate=users, duration=duration, thresholds=thresholds)


def test_five_users_for_five_seconds_pass_the_gates_and_write_every_report(
    orders: str, tmp_path: Path
) -> None:
    summary = tmp_path / "github_step_summary.md"
    runner = LoadRunner(
        REPO, reports_root=tmp_path / "reports", environ={**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    )
    result = runner.run(
        "orders", "dev", orders, settings(5, Thresholds(fail_ratio=0.01, p95_ms=500, min_rps=5))
    )

    assert result.passed, result.reasons
    assert result.figures.requests > 50 and result.figures.failures == 0
    assert result.reports.directory.parent == tmp_path / "reports" / "orders" / "dev"
    assert "<html" in result.reports.html.read_text()[:500].lower()
    f = result.figures  # locust's own aggregate agrees with the gate's figures
    assert locust_aggregate(result.reports.json) == (f.requests, f.failures, f.p95_ms)
    assert int(aggregated_row(result.reports.csv_stats)["Request Count"]) > 0  # the CSV may lag
    assert json.loads(result.reports.json.read_text())[0]["num_requests"] > 0
    assert "✅ passed" in result.reports.markdown.read_text()
    assert summary.read_text().startswith("### Load test: orders @ dev — ✅ passed")
    assert json.loads(result.reports.result.read_text())["passed"] is True
    assert locust_children() == []


def test_impossible_throughput_fails_the_gate_with_a_clear_reason(orders: str, tmp_path: Path) -> None:
    runner = LoadRunner(REPO, reports_root=tmp_path)
    result = runner.run(
        "orders", "dev", orders, settings(2, Thresholds(p95_ms=0.001, min_rps=1_000_000), users=2)
    )
    assert not result.passed
    assert any(r.startswith("throughput ") and "below the 1e+06 req/s minimum" in r for r in result.reasons)
    assert "❌ failed" in result.reports.markdown.read_text()


def test_a_half_failing_release_fails_the_failure_ratio_gate(tmp_path: Path) -> None:
    proc, url = start_orders(tmp_path, fail_rate=0.5)
    try:
        result = LoadRunner(REPO, reports_root=tmp_path).run(
            "orders", "dev", url, settings(2, Thresholds(fail_ratio=0.01), users=3)
        )
    finally:
        stop(proc)
    assert not result.passed and result.figures.fail_ratio > 0.25
    assert result.reasons[0].startswith(f"failure ratio {result.figures.fail_ratio:.2%}")
    assert result.failure_samples and all(s.error.startswith("HTTP 500") for s in result.failure_samples)
    assert "most frequent failure: " in result.headline
    assert "Most frequent failures" in result.reports.markdown.read_text()


def test_two_workers_run_distributed_and_the_gate_reads_the_master(orders: str, tmp_path: Path) -> None:
    runner = LoadRunner(REPO, reports_root=tmp_path)
    result = runner.run("orders", "dev", orders, settings(2, Thresholds(fail_ratio=0.01)), workers=2)
    assert result.passed and result.workers == 2
    master = result.reports.log("master").read_text()
    assert "2 workers connected" in master
    for n in (1, 2):
        assert "Got quit message from master" in result.reports.log(f"worker-{n}").read_text()
    assert result.figures.requests > 0 and result.figures.failures == 0
    assert locust_children() == []


def test_a_run_past_its_timeout_is_stopped_and_reported(tmp_path: Path) -> None:
    hanging = tmp_path / "hanging.py"
    hanging.write_text("import time\ntime.sleep(120)\n")
    runner = LoadRunner(REPO, reports_root=tmp_path)
    with pytest.raises(PlatformError, match="timed out: locust was still running after 3 s") as exc:
        runner.run("orders", "dev", "http://127.0.0.1:9", LoadSettings(hanging, duration=1), timeout=3)
    assert "locust.log" in exc.value.hint
    assert locust_children() == []


def test_a_stage_that_cannot_fit_its_timeout_is_refused_before_starting(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="cannot finish in time: it runs 30 s but only 10 s"):
        LoadRunner(REPO, reports_root=tmp_path).run(
            "orders", "dev", "http://127.0.0.1:9", LoadSettings(LOCUSTFILE, duration=30), timeout=10
        )
    assert not any(tmp_path.iterdir())


def test_cli_prints_json_and_exits_6_when_the_gate_fails(
    orders: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(tmp_path / "project")
    base = ["--root", str(root), "loadtest", "orders", "--env", "dev", "--target", orders, "--duration", "2"]
    assert main([*base, "--users", "3", "--json"]) == 0
    passed = json.loads(capsys.readouterr().out)
    assert passed["passed"] is True and passed["settings"]["users"] == 3
    assert Path(passed["reports"]["html"]).is_file()

    assert main([*base, "--users", "2", "--min-rps", "1000000"]) == 6
    err = capsys.readouterr().err
    assert "error: load test of orders in dev failed: throughput" in err and "Traceback" not in err


def test_cli_reports_a_missing_locustfile_without_traceback(
    orders: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(tmp_path / "project")
    args = [
        "--root",
        str(root),
        "loadtest",
        "orders",
        "--env",
        "dev",
        "--target",
        orders,
        "--locustfile",
        "no.py",
    ]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "no locustfile for orders" in err and "Traceback" not in err


AS_FROM_A_TERMINAL = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
os.execv(sys.executable, [sys.executable, "-m", "pipeline.cli.main", *sys.argv[1:]])
"""
"""Runs the CLI (same process, by exec) with SIGINT handled by default and not blocked, as
in a shell where someone presses Ctrl-C. A process inherits an ignored or blocked SIGINT
across exec, and a test worker's may be either (a background job's, or one an event loop
of another test in the same worker left): the CLI would then never see the interrupt."""


def test_ctrl_c_stops_the_master_and_its_workers(orders: str, tmp_path: Path) -> None:
    root = write_project(tmp_path / "project")
    reports = tmp_path / "run"
    cli = subprocess.Popen(
        [sys.executable, "-c", AS_FROM_A_TERMINAL, "--root", str(root), "loadtest", "orders", "--env", "dev",
         "--target", orders, "--duration", "60", "--workers", "1", "--reports", str(reports)],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        for _ in range(600):  # until the worker has joined the master
            if log_says(reports / "master.log", "1 workers connected"):
                break
            time.sleep(0.05)
        assert log_says(reports / "master.log", "1 workers connected")
        descendants = psutil.Process(cli.pid).children(recursive=True)
        assert len(descendants) == 2
        cli.send_signal(signal.SIGINT)
        _, stderr = cli.communicate(timeout=30)
    finally:
        stop(cli)
    assert cli.returncode == 130
    assert b"every locust process was stopped" in stderr
    gone, alive = psutil.wait_procs(descendants, timeout=5)
    assert alive == [] and len(gone) == 2
