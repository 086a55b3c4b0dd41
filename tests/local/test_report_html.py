"""A real local deployment writes its HTML report (``pipeline deploy --report``), and a
headless Chromium renders it: a screenshot is taken and the DOM holds every chart with data.

One project (module scope): v1 is deployed, then v2 by canary while a thread sends real
requests through the environment's router, so both slots carry traffic, the analysis judges
and the plane's span store holds the router's traces.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.local.plane.lifecycle import stop_plane
from pipeline.report.page import CHART_IDS
from tests.local.support.plane import APP, SERVICE_YAML, Project, free_port_pair, git

CANARY = SERVICE_YAML.replace("min_requests: 5", "min_requests: 3")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("report") / "repo"
    service = root / "services" / "orders"
    service.mkdir(parents=True)
    port = free_port_pair()
    (root / "pipeline.yaml").write_text(textwrap.dedent(f"""\
        project: shop
        organisations: {{dev: {{members: []}}}}
        environments:
          dev: {{platform: local, owner: dev, local: {{port: {port}}}}}
        """))
    (root / ".gitignore").write_text(".pipeline/\nreports/\n")
    (service / "app.py").write_text(APP)
    (service / "service.yaml").write_text(CANARY)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "test")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "orders v1")
    project = Project(root, port, git(root, "rev-parse", "HEAD"))
    try:
        yield project
    finally:
        stop_plane(project.state_dir)


def _pipeline(project: Project, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--root", str(project.root), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stderr


def _load(port: int, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/orders?ms=5", timeout=5) as answer:
                answer.read()
        except (urllib.error.URLError, OSError):
            pass
        stop.wait(0.02)


@pytest.fixture(scope="module")
def report(project: Project) -> Path:
    _pipeline(project, "deploy", "orders", "--env", "dev")
    v2 = project.commit_change("services/orders/NOTES", "v2\n", "orders v2")
    stop = threading.Event()
    sender = threading.Thread(target=_load, args=(project.port, stop), daemon=True)
    sender.start()
    path = project.root / "reports" / "orders.html"
    try:
        stderr = _pipeline(project, "deploy", "orders", "--env", "dev", "--ref", v2, "--report", str(path))
    finally:
        stop.set()
        sender.join()
    assert f"report: {path}" in stderr
    return path


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "chromium is not installed (scripts/test.sh installs it: apt-get install chromium)"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd=tmp)


def test_the_report_holds_every_chart_with_data_from_the_deployment(report: Path) -> None:
    text = report.read_text()
    for cid in CHART_IDS:
        assert f'id="{cid}"' in text
    assert "<script" not in text and "http://" not in text.split("</style>")[0]  # nothing fetched
    assert "analysis successful" in text  # the verdicts' reasons, from the history
    assert 'id="waterfall-green"' in text and 'id="waterfall-blue"' in text  # the slowest traced requests


def test_chromium_renders_the_report_with_every_chart_present(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    url = report.resolve().as_uri()
    done = _chromium(f"--screenshot={shot}", "--window-size=1280,2000", url, tmp=tmp_path)
    assert shot.exists(), done.stderr
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, len(png)  # a real page, not a blank one
    dom = _chromium("--dump-dom", url, tmp=tmp_path).stdout
    for cid in (*CHART_IDS, "waterfall-blue", "waterfall-green"):
        chart = re.search(rf'<svg id="{cid}".*?</svg>', dom, re.S)
        assert chart is not None, f"{cid} missing from the rendered DOM"
        assert 'class="point"' in chart.group(0), f"{cid} has no data points"
    rate = re.search(r'<svg id="chart-rate".*?</svg>', dom, re.S)
    assert rate is not None
    for slot in ("blue", "green"):
        assert f'data-series="{slot}"' in rate.group(0)


def test_status_watch_shows_the_real_planes_weights_health_and_traffic(
    project: Project, report: Path
) -> None:
    args = ["--root", str(project.root), "status", "--watch", "--env", "dev", "--interval", "1",
            "--count", "1"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "dev at" in out and "orders" in out and "succeeded" in out
    assert "blue 0% / green 100%" in out  # read back from the router
    assert "2/2 healthy" in out and "green" in out and "5xx" in out
