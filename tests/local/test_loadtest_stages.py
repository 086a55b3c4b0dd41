"""``ServiceStageRunner`` (the StageRunner port) against real processes on 127.0.0.1.

The test stage: health checks through the route, Lambda smoke events through an HTTP
front that turns requests into HTTP API v2 events for the real notify handler, and smoke
commands. The load stage: a real short locust run, a service without ``load:``, and a
broken setup that fails the stage instead of raising.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
import pytest

from pipeline.config import load_project
from pipeline.loadtest import LoadSettings, ServiceStageRunner, Thresholds
from pipeline.loadtest.processes import free_port
from pipeline.loadtest.smoke import SmokeRequest
from tests.local.support.orders_app import LOCUSTFILE, REPO, start_orders, stop
from tests.support.loadtest_project import write_project


@pytest.fixture(scope="module")
def orders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_orders(tmp_path_factory.mktemp("orders"))
    yield url
    stop(proc)


def stages(tmp_path: Path, **kwargs: Any) -> ServiceStageRunner:
    kwargs.setdefault("route", "/orders*")
    return ServiceStageRunner("orders", root=REPO, environment="dev", reports_root=tmp_path, **kwargs)


# --- test stage: HTTP checks ------------------------------------------------------------


def test_health_check_goes_through_the_route_and_passes(orders: str, tmp_path: Path) -> None:
    result = stages(tmp_path, health_path="/health").run("test", orders, 10)
    assert result.passed, result.summary
    assert result.summary == "smoke test of orders passed: GET /orders/health 200"
    assert "| GET /orders/health | HTTP 200 |" in Path(result.report).read_text()


def test_health_check_fails_on_a_wrong_status_with_the_body(orders: str, tmp_path: Path) -> None:
    result = stages(tmp_path, route="/*", health_path="/nope").run("test", orders, 10)
    assert not result.passed
    assert result.summary.startswith("smoke test of orders failed: GET /nope: HTTP 404")
    assert "no route for /nope" in result.summary


def test_health_check_fails_when_nothing_listens(tmp_path: Path) -> None:
    result = stages(tmp_path).run("test", f"http://127.0.0.1:{free_port()}", 5)
    assert not result.passed and "GET /orders/health: no response" in result.summary


def load_notify() -> ModuleType:
    spec = importlib.util.spec_from_file_location("notify_stage_handler", REPO / "services/notify/handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def notify(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The notify handler behind a minimal HTTP API front (HTTP request -> v2 event)."""
    monkeypatch.setenv("NOTIFY_KDF_ITERATIONS", "1000")
    handler = load_notify()

    class Front(BaseHTTPRequestHandler):
        def _invoke(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            event = {
                "version": "2.0",
                "rawPath": self.path.split("?")[0],
                "requestContext": {"http": {"method": self.command, "path": self.path}},
                "body": body,
                "isBase64Encoded": False,
            }
            answer = handler.handle(event, None)
            data = answer["body"].encode()
            self.send_response(answer["statusCode"])
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _invoke

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Front)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_lambda_smoke_events_are_posted_through_the_endpoint(notify: str, tmp_path: Path) -> None:
    events = [
        {"path": "/notify", "body": {"to": "smoke@example.com", "template": "welcome"}},
        {"httpMethod": "GET", "path": "/notify/health"},
    ]
    runner = ServiceStageRunner(
        "notify",
        root=REPO,
        route="/notify*",
        health_path=None,
        smoke_requests=[SmokeRequest.from_event(e, "/notify") for e in events],
        reports_root=tmp_path,
    )
    result = runner.run("test", notify, 10)
    assert result.passed, result.summary
    assert result.summary == "smoke test of notify passed: POST /notify 202, GET /notify/health 200"


def test_a_rejected_smoke_event_fails_the_stage(notify: str, tmp_path: Path) -> None:
    bad = SmokeRequest.from_event({"path": "/notify", "body": {"template": "nope", "to": "x"}}, "/notify")
    runner = ServiceStageRunner(
        "notify", root=REPO, health_path=None, smoke_requests=[bad], reports_root=tmp_path
    )
    result = runner.run("test", notify, 10)
    assert not result.passed and "POST /notify: HTTP 400" in result.summary


def test_a_lambda_without_smoke_events_says_it_checked_nothing(tmp_path: Path) -> None:
    result = ServiceStageRunner("notify", root=REPO, health_path=None, reports_root=tmp_path).run(
        "test", "http://x", 5
    )
    assert result.passed and "checked nothing" in result.summary


# --- test stage: smoke command ----------------------------------------------------------


def test_smoke_command_sees_the_endpoint_and_its_exit_code_decides(tmp_path: Path) -> None:
    ok = stages(tmp_path, smoke_command='test "$TARGET_URL" = http://127.0.0.1:1 && echo fine')
    passed = ok.run("test", "http://127.0.0.1:1", 10)
    assert passed.passed and "fine" in Path(passed.report).read_text()
    failed = stages(tmp_path, smoke_command="echo boom >&2; exit 3").run("test", "http://127.0.0.1:1", 10)
    assert not failed.passed and failed.summary == "smoke command of orders exited 3: boom"


def test_a_smoke_command_past_the_timeout_is_stopped(tmp_path: Path) -> None:
    result = stages(tmp_path, smoke_command="sleep 60 & sleep 60").run("test", "http://127.0.0.1:1", 1)
    assert not result.passed and "timed out and was stopped" in result.summary
    sleepers = [p for p in psutil.Process().children(recursive=True) if p.name() == "sleep"]
    assert sleepers == []


# --- load stage -------------------------------------------------------------------------


def test_load_stage_runs_the_gate_and_points_at_the_summary(orders: str, tmp_path: Path) -> None:
    load = LoadSettings(LOCUSTFILE, users=3, spawn_rate=3, duration=2, thresholds=Thresholds(fail_ratio=0.01))
    result = stages(tmp_path, load=load).run("load", orders, 60)
    assert result.passed, result.summary
    assert result.summary.startswith("load test of orders passed (")
    assert Path(result.report).name == "summary.md" and "✅ passed" in Path(result.report).read_text()


def test_a_service_without_load_section_passes_the_load_stage_saying_so(tmp_path: Path) -> None:
    result = stages(tmp_path).run("load", "http://127.0.0.1:1", 60)
    assert result.passed
    assert result.summary == "orders has no load: section in service.yaml; load stage skipped"


def test_a_broken_load_setup_fails_the_stage_instead_of_raising(tmp_path: Path) -> None:
    load = LoadSettings(Path("loadtests/missing.py"), duration=2)
    result = stages(tmp_path, load=load).run("load", "http://127.0.0.1:1", 60)
    assert not result.passed
    assert result.summary.startswith("load stage of orders could not run: no locustfile for orders")


def test_unknown_stage_fails(tmp_path: Path) -> None:
    assert not stages(tmp_path).run("chaos", "http://127.0.0.1:1", 5).passed


def test_from_config_reads_route_health_and_load(tmp_path: Path) -> None:
    project = load_project(write_project(tmp_path / "project"))
    runner = ServiceStageRunner.from_config(project, "orders", "dev")
    assert (runner.route, runner.health_path, runner.environment) == ("/orders*", "/health", "dev")
    assert runner.load is not None and runner.load.user_class == "OrdersUser"
    assert runner.reports_root == project.root / "reports"
    assert ServiceStageRunner.from_config(project, "bare").load is None
    by_model = ServiceStageRunner.from_config(
        project, project.service("orders"), "dev"
    )  # as the factories pass it
    assert by_model.service == "orders" and by_model.load == runner.load
    json.dumps(runner.load.to_dict())  # the settings are plain data
