"""The ramp's step shape tells throttles apart on real answers, inside a real locust run.

A small HTTP server on 127.0.0.1 admits ``RATE`` requests a second and answers 429 beyond
that, the way the two throttles in front of a service answer: ``/edge`` like the API
edge (``Retry-After``), ``/function`` like the Lambda runtime (``X-Lambda-Version``). A
ramp of 1 then 6 users (2 s a step) stays under the rate at the first step and crosses it
at the second; the step shape must book the 429s to the right counter and the report must
name the matching limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pipeline.loadtest import LoadRunner, LoadSettings, Thresholds
from pipeline.loadtest.ramp import Ramp

RATE = 25  # requests a second; one user sends about 15, six about 90
LOCUSTFILE = """
import os
from locust import FastHttpUser, constant, task

class Caller(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def call(self):
        self.client.get(os.environ["THROTTLED_PATH"])
"""


class Throttling(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    window: ClassVar[list[float]] = []  # admission times in the last second, shared by every request
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_GET(self) -> None:
        now = time.monotonic()
        with self.lock:
            self.window[:] = [t for t in self.window if now - t < 1.0]
            admitted = len(self.window) < RATE
            if admitted:
                self.window.append(now)
        if admitted:
            self._answer(200, {})
        elif self.path == "/edge":
            self._answer(429, {"Retry-After": "1"})
        else:
            self._answer(429, {"X-Lambda-Version": "7"})

    def _answer(self, status: int, headers: dict[str, str]) -> None:
        body = b'{"message": "Too Many Requests"}' if status == 429 else b"{}"
        self.send_response(status)
        for name, value in {**headers, "Content-Type": "application/json"}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def throttling() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("path", "kind", "counter"),
    [
        ("/edge", "per_key_throttle", "key_throttled"),
        ("/function", "function_concurrency", "function_throttled"),
    ],
)
def test_the_step_shape_books_each_429_to_its_throttle_and_the_ramp_names_it(
    throttling: str, tmp_path: Path, path: str, kind: str, counter: str
) -> None:
    (tmp_path / "caller.py").write_text(LOCUSTFILE)
    ramp = Ramp(1, 6, 5, 2)
    settings = LoadSettings(tmp_path / "caller.py", users=6, spawn_rate=20, duration=ramp.duration,
                            thresholds=Thresholds(fail_ratio=0.01), ramp=ramp)
    runner = LoadRunner(tmp_path, reports_root=tmp_path / "reports", environ={"THROTTLED_PATH": path})

    result = runner.run("caller", "", throttling, settings)

    assert result.ramp is not None
    low, high = (v.step for v in result.ramp.verdicts)
    assert (low.users, high.users) == (1, 6)
    assert getattr(high, counter) > 0 and getattr(high, counter) == high.failures
    other = "function_throttled" if counter == "key_throttled" else "key_throttled"
    assert getattr(low, other) == getattr(high, other) == 0
    assert result.ramp.limit.kind == kind
    assert result.ramp.knee in (None, 1) and not result.ramp.verdicts[1].passed
