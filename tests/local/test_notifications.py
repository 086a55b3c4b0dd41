"""Notifications of real local deployments reach a real webhook receiver; a dead webhook
fails nothing; every run's spans land in the plane's span store with the history's trace id.

One project (module scope) with two environments on the local platform: ``dev`` notifies a
receiver (a real HTTP server in this test), ``qa`` a port where nothing listens. The
deployments go through the CLI (``pipeline deploy``, ``pipeline rollback``), so the
composition root wires the observers as it does for users.
"""

from __future__ import annotations

import json
import os
import socket
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.local.plane.lifecycle import plane_processes, read_plane, stop_plane
from pipeline.local.spans import SpanStore
from tests.local.support.plane import APP, SERVICE_YAML, Project, free_port_pair, git

BLUE_GREEN = SERVICE_YAML[: SERVICE_YAML.index("deploy:")] + textwrap.dedent("""\
    deploy:
      strategy: blue-green
      analysis: {interval: 1s, window: 1s, min_requests: 1}
      timeouts: {ready: 30s, verify: 10s, stage: 30s, poll: 0.2s}
    """)


class Receiver(ThreadingHTTPServer):
    """A Slack-compatible webhook receiver: keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/deployments"

    def texts(self) -> list[str]:
        return [str(b["text"]) for b in self.bodies]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.bodies.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: connections are refused


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("notify") / "repo"
    service = root / "services" / "orders"
    service.mkdir(parents=True)
    dev, qa = free_port_pair(), free_port_pair()
    (root / "pipeline.yaml").write_text(textwrap.dedent(f"""\
        project: shop
        organisations: {{dev: {{members: []}}}}
        environments:
          dev:
            platform: local
            owner: dev
            local: {{port: {dev}}}
            notify:
              webhook: ${{T3_TEST_WEBHOOK}}
              report: "https://reports.example/{{service}}/{{deployment}}.html"
          qa:
            platform: local
            owner: dev
            local: {{port: {qa}}}
            notify: {{webhook: "http://127.0.0.1:{_dead_port()}/hook", events: [started, succeeded]}}
        """))
    (root / ".gitignore").write_text(".pipeline/\nreports/\n")
    (service / "app.py").write_text(APP)
    (service / "service.yaml").write_text(BLUE_GREEN)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "test")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "orders v1")
    project = Project(root, dev, git(root, "rev-parse", "HEAD"))
    os.environ["T3_TEST_WEBHOOK"] = receiver.url
    # each run its own trace here, also when this suite runs in GitHub Actions (where every
    # run of a job would join the workflow run's trace)
    hidden = {k: os.environ.pop(k) for k in ("GITHUB_ACTIONS", "TRACEPARENT") if k in os.environ}
    try:
        yield project
    finally:
        del os.environ["T3_TEST_WEBHOOK"]
        os.environ.update(hidden)
        info = read_plane(project.state_dir)
        stop_plane(project.state_dir)
        if info is not None:
            assert plane_processes(info.id) == []


def _pipeline(project: Project, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--root", str(project.root), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _history(project: Project, env: str) -> list[dict[str, Any]]:
    out = _pipeline(project, "history", "orders", "--env", env, "--json").stdout
    return list(json.loads(out))


def test_deploy_and_rollback_notify_the_webhook_with_a_report_link(
    project: Project, receiver: Receiver
) -> None:
    _pipeline(project, "deploy", "orders", "--env", "dev")
    v2 = project.commit_change("services/orders/NOTES", "v2\n", "orders v2")
    _pipeline(project, "deploy", "orders", "--env", "dev", "--ref", v2)
    _pipeline(project, "rollback", "orders", "--env", "dev", "--yes", "--reason", "test rollback")

    subjects = [t.splitlines()[0] for t in receiver.texts()]
    assert [s.split(": ", 1)[1].rsplit(" (", 1)[0] for s in subjects] == [
        "deployment started", "deployment succeeded",  # v1
        "deployment started", "deployment succeeded",  # v2
        "deployment started", "deployment rolled back",  # back to v1
    ], subjects
    assert all(s.startswith("orders in dev: ") for s in subjects)
    history = _history(project, "dev")
    outcomes = [r for r in history if r["action"] == "deployment.succeeded"]
    assert len(outcomes) == 3
    last = receiver.bodies[-1]
    deployment = outcomes[-1]["deployment"]
    assert f"<https://reports.example/orders/{deployment}.html|report>" in last["text"]
    assert "asked for: rollback" in last["text"]
    assert last["blocks"][0]["type"] == "section"


def test_every_run_is_a_trace_in_the_span_store_named_by_the_history(project: Project) -> None:
    history = _history(project, "dev")
    outcomes = [r for r in history if r["action"].startswith("deployment.")]
    assert outcomes and all(r["trace_id"] for r in outcomes)
    store = SpanStore.of(project.state_dir)
    for record in outcomes:
        spans = store.trace(record["trace_id"])
        names = [s.name for s in spans]
        assert any(n.startswith(("deploy orders", "rollback orders")) for n in names), names
        runs = ("wait", "deploy", "rollback")
        actions = {s.attributes.get("pipeline.action") for s in spans if not s.name.startswith(runs)}
        assert {"provision", "await_ready", "set_traffic", "verify_traffic"} <= actions, names
        assert all(s.attributes.get("pipeline.deployment") == record["deployment"] for s in spans)
    out = _pipeline(project, "history", "orders", "--env", "dev").stdout
    assert f"trace {outcomes[-1]['trace_id']}" in out
    shown = json.loads(_pipeline(project, "trace", "show", outcomes[-1]["trace_id"], "--json").stdout)
    names = json.dumps(shown)
    assert "rollback orders" in names and "scale_down" in names and "wait " in names
    listed = _pipeline(project, "trace", "--service", "pipeline", "--json").stdout
    assert {r["trace_id"] for r in outcomes} <= {t["trace_id"] for t in json.loads(listed)["traces"]}


def test_a_dead_webhook_does_not_fail_the_deployment_and_is_recorded(project: Project) -> None:
    result = _pipeline(project, "deploy", "orders", "--env", "qa")
    history = _history(project, "qa")
    assert [r["action"] for r in history if r["action"].startswith("deployment.")] == ["deployment.succeeded"]
    failed = [r for r in history if r["action"] == "notify.failed"]
    assert [r["detail"].split(" notification")[0] for r in failed] == ["started", "succeeded"]
    assert all("webhook http://127.0.0.1 unreachable" in r["detail"] for r in failed)
    assert "/hook" not in json.dumps(failed)  # the webhook URL (a secret) is not written down
    assert "succeeded notification via webhook failed" in result.stderr
