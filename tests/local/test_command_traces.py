"""Every ``pipeline`` command is a span at a real OTLP/HTTP collector (a receiver in this
test) when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; in GitHub Actions the commands of all
jobs of one workflow run share the run's trace id."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.main import main
from pipeline.local.span_export import records_from_otlp
from pipeline.local.spans import SpanRecord
from pipeline.observe.setup import github_trace_id


class Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.spans: list[SpanRecord] = []
        self.paths: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.paths.append(self.path)
        self.server.spans.extend(records_from_otlp(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/shop", "GITHUB_RUN_ID": "7",
          "GITHUB_RUN_ATTEMPT": "1"}


def test_each_command_of_a_workflow_run_is_a_span_of_the_runs_trace(
    collector: Collector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pipeline.yaml").write_text(textwrap.dedent("""\
        project: shop
        organisations: {dev: {}}
        environments:
          dev: {platform: local, owner: dev, local: {port: 8100}}
        """))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{collector.server_address[1]}")
    monkeypatch.delenv("TRACEPARENT", raising=False)
    for name, value in GITHUB.items():
        monkeypatch.setenv(name, value)
    for job in ("test", "deliver"):
        monkeypatch.setenv("GITHUB_JOB", job)
        assert main(["--root", str(tmp_path), "validate"]) == 0
    assert main(["--root", str(tmp_path), "history", "nosuch", "--env", "dev"]) == 3  # a failing command

    assert set(collector.paths) == {"/v1/traces"}
    names = [(s.name, s.status, s.attributes.get("pipeline.outcome")) for s in collector.spans]
    assert names == [("pipeline validate", "unset", "ok")] * 2 + [("pipeline history", "error", None)]
    assert {s.trace_id for s in collector.spans} == {format(github_trace_id(GITHUB) or 0, "032x")}
    assert all(s.parent_id is None for s in collector.spans)
