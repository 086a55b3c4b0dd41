"""``pipeline loadtest`` inside GitHub Actions: reports in --report-dir, the job summary,
step outputs; a real locust run against a real orders process."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli.main import main
from tests.local.support.orders_app import REPO, orders_running

PROJECT = """\
project: lt
organisations: {dev: {}}
environments:
  dev: {platform: local, owner: dev, local: {port: 18100}}
"""

ORDERS = """\
name: orders
kind: ecs
owner: dev
paths: [services/orders/**]
build: {context: services/orders}
local: {command: python -m app}
ecs: {container: orders, port: 8080, route: {path: "/orders*", priority: 10}}
load:
  locustfile: loadtests/orders.py
  user_class: OrdersUser
  users: 2
  spawn_rate: 2
  duration: 2s
  thresholds: {fail_ratio: 0.5}
"""


@pytest.fixture(scope="module")
def orders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with orders_running(tmp_path_factory.mktemp("orders")) as url:
        yield url


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "services" / "orders").mkdir(parents=True)
    (root / "pipeline.yaml").write_text(PROJECT)
    (root / "services" / "orders" / "service.yaml").write_text(ORDERS)
    shutil.copytree(REPO / "loadtests", root / "loadtests")
    return root


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_reports_go_to_the_report_dir_and_the_summary_to_the_job_summary(
    orders: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary, outputs = tmp_path / "step_summary.md", tmp_path / "github_output"
    summary.write_text("## earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.chdir(tmp_path)
    args = ["--root", str(_project(tmp_path)), "loadtest", "orders", "--env", "dev", "--target", orders]
    assert main([*args, "--report-dir", "load-report", "--github-summary", "--github-output"]) == 0
    folder = tmp_path / "load-report"
    assert {"report.html", "summary.md", "result.json"} <= {p.name for p in folder.iterdir()}
    text = summary.read_text()
    assert text.startswith("## earlier step\n") and "### Load test: orders @ dev — ✅ passed" in text
    values = _outputs(outputs)
    assert values["passed"] == "true" and values["report_dir"] == str(folder)
    assert int(values["requests"]) > 0 and values["failures"] == "0"
    assert float(values["rps"]) > 0 and float(values["p95_ms"]) > 0


def test_without_github_summary_the_job_summary_is_left_alone_and_a_failed_gate_still_writes_outputs(
    orders: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary, outputs = tmp_path / "step_summary.md", tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    args = ["--root", str(_project(tmp_path)), "loadtest", "orders", "--env", "dev", "--target", orders]
    folder = tmp_path / "reports"
    assert main([*args, "--report-dir", str(folder), "--min-rps", "1000000", "--github-output"]) == 6
    assert not summary.exists()
    assert _outputs(outputs)["passed"] == "false"
    assert (folder / "summary.md").is_file()


def test_github_summary_outside_github_actions_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    args = ["--root", str(_project(tmp_path)), "loadtest", "orders", "--env", "dev", "--github-summary"]
    assert main(args) == 2
    assert "--github-summary needs $GITHUB_STEP_SUMMARY" in capsys.readouterr().err
