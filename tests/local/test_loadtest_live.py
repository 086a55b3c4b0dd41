"""A real locust run reports live figures to the watcher while it runs.

Locust (a subprocess) loads a tiny HTTP server on 127.0.0.1 for a few seconds; the
``LoadRunner`` reads its ``--csv`` statistics every second and hands them to the watcher
set with ``live.watching``. The assertions are about counts and order, never wall time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.loadtest import LoadRunner, LoadSettings
from pipeline.loadtest.live import LiveLoad, current_watcher, watching

LOCUSTFILE = '''
from locust import FastHttpUser, constant, task


class Visitor(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def index(self) -> None:
        self.client.get("/")
'''


class Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_running_load_test_reports_growing_counts_to_the_watcher(target: str, tmp_path: Path) -> None:
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE, encoding="utf-8")
    settings = LoadSettings(tmp_path / "locustfile.py", users=2, spawn_rate=10, duration=5)
    seen: list[LiveLoad] = []
    with watching(seen.append):
        result = LoadRunner(tmp_path).run("demo", "dev", target, settings, reports=tmp_path / "report")
    assert current_watcher() is None
    assert result.figures.requests > 0
    counts = [live.requests for live in seen]
    assert any(counts), f"no live figures while locust ran: {seen}"
    assert counts == sorted(counts)  # totals so far only grow
    assert max(counts) <= result.figures.requests
    assert all(live.service == "demo" and live.duration == 5 for live in seen)
    assert all(live.failures == 0 for live in seen)
