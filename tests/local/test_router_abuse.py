"""The router under abuse, with real processes and sockets: slow clients, a connection flood,
large bodies and a flood of failing requests must not stop the router or the control API,
must not take memory in proportion to body sizes, and must not flood the plane's log.

The plane of these tests runs with low limits (set through its environment): at most
``CAP`` connections, ``TIMEOUT`` seconds to send a request head or to keep a body moving, and
a one-second window for repeated log records.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.core.errors import PlatformError
from pipeline.core.model import Slot, Weights
from pipeline.local.http.limits import BODY_IDLE_TIMEOUT_ENV, HEADER_TIMEOUT_ENV, MAX_CONNECTIONS_ENV
from pipeline.local.plane.lifecycle import PlaneInfo, ensure_plane, stop_plane
from pipeline.local.plane.logs import WINDOW_ENV
from pipeline.local.plane.otlp import SPANS_QUIET_ENV
from tests.local.support.plane import APP, Adapters, Project, get, running_plane, wait_until

CAP = 40
TIMEOUT = 2.0
MIB = 1024 * 1024
BIG = 64 * MIB

BYTES_APP = APP.replace("class Server(ThreadingHTTPServer):", '''
def _do_post(self):
    """Count the bytes of the body and answer the count."""
    total, left = 0, int(self.headers.get("Content-Length", "0"))
    while left:
        chunk = self.rfile.read(min(left, 1 << 20))
        if not chunk:
            break
        total += len(chunk)
        left -= len(chunk)
    return self._send(200, {"bytes": total})


def _do_big(self, size):
    self.send_response(200)
    self.send_header("Content-Type", "application/octet-stream")
    self.send_header("Content-Length", str(size))
    self.end_headers()
    block = b"x" * (1 << 20)
    for start in range(0, size, len(block)):
        self.wfile.write(block[: size - start])


_get = Handler.do_GET


def _do_get(self):
    if self.path.startswith("/orders/big"):
        return _do_big(self, int(self.path.rsplit("=", 1)[1]))
    return _get(self)


Handler.do_POST = _do_post
Handler.do_GET = _do_get


class Server(ThreadingHTTPServer):''')


@pytest.fixture
def plane(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlaneInfo]:
    """The project's plane started with low abuse limits; stopped, with an orphan check."""
    monkeypatch.setenv(MAX_CONNECTIONS_ENV, str(CAP))
    monkeypatch.setenv(HEADER_TIMEOUT_ENV, str(TIMEOUT))
    monkeypatch.setenv(BODY_IDLE_TIMEOUT_ENV, str(TIMEOUT))
    monkeypatch.setenv(WINDOW_ENV, "1")
    with running_plane(project) as info:
        yield info


def _serve(project: Project, adapters: Adapters, app: str = APP) -> None:
    """Blue runs the project's orders service (``app`` committed first), 100% of traffic."""
    if app != APP:
        project.commit_change("services/orders/app.py", app, "orders counts bytes")
    release = adapters.registry.resolve("orders", "HEAD")
    adapters.compute.provision(Slot.BLUE, release)
    wait_until(lambda: adapters.compute.health(Slot.BLUE, release).ready, 30, "blue ready")
    adapters.router.set_weights(Weights(100, 0))
    assert get(adapters.url + "/orders")[0] == 200


def _answer(sock: socket.socket, wait: float) -> bytes:
    """What the router sent on ``sock`` before closing it (b"" when it just closed);
    raises TimeoutError when it neither answered nor closed within ``wait`` seconds."""
    sock.settimeout(wait)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_slow_clients_beyond_the_cap_are_refused_and_timed_out_while_the_control_api_answers(
        project: Project, adapters: Adapters) -> None:
    _serve(project, adapters)
    stop = threading.Event()
    heads = [socket.create_connection(("127.0.0.1", project.port)) for _ in range(CAP + 20)]
    for sock in heads:  # slowloris: a request head that never ends, trickled byte by byte
        sock.sendall(b"GET /orders HTTP/1.1\r\nHost: x\r\n")
    bodies: list[socket.socket] = []

    def trickle() -> None:
        while not stop.wait(0.3):
            for sock in heads:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X")

    threading.Thread(target=trickle, daemon=True).start()
    try:
        # the control API answers while the router's port is saturated
        assert adapters.router.get_weights() == Weights(100, 0)
        # connections over the cap are answered 503 at once; the others get no answer and are
        # cut when their head is not complete in time, however many bytes they trickle
        answers = [_answer(sock, 4 * TIMEOUT) for sock in heads]
        refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
        assert len(refused) >= len(heads) - CAP
        assert all(a == b"" for a in answers if a not in refused)
        # a head sent in full, then a body that stops: 408 once it idles
        bodies.extend(socket.create_connection(("127.0.0.1", project.port + 1)) for _ in range(3))
        for sock in bodies:
            sock.sendall(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        for sock in bodies:
            assert _answer(sock, 4 * TIMEOUT).startswith(b"HTTP/1.1 408")
        # the router serves normal requests again, and the control API still answers
        assert get(adapters.url + "/orders")[0] == 200
        assert adapters.router.get_weights() == Weights(100, 0)
    finally:
        stop.set()
        for sock in heads + bodies:
            sock.close()


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def _upload(port: int, size: int) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    block = b"y" * MIB

    def body() -> Iterator[bytes]:
        for start in range(0, size, MIB):
            yield block[: size - start]

    try:
        conn.request("POST", "/orders/upload", body=body(), headers={"Content-Length": str(size)})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _download(port: int, size: int) -> tuple[int, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", f"/orders/big?size={size}")
        resp = conn.getresponse()
        received = 0
        while chunk := resp.read(MIB):
            received += len(chunk)
        return resp.status, received
    finally:
        conn.close()


def test_concurrent_large_bodies_stream_through_the_router_in_bounded_memory(
        project: Project, adapters: Adapters, plane: PlaneInfo) -> None:
    _serve(project, adapters, BYTES_APP)
    assert _upload(project.port, 10)[0] == 200  # warm both paths before the baseline
    assert _download(project.port, 10) == (200, 10)
    before = _peak_rss(plane.pid)

    uploads: list[tuple[int, bytes]] = []
    threads = [threading.Thread(target=lambda: uploads.append(_upload(project.port, BIG))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [(status, json.loads(body)) for status, body in uploads] == [(200, {"bytes": BIG})] * 4
    assert _download(project.port, BIG) == (200, BIG)

    growth = _peak_rss(plane.pid) - before
    assert growth < 32 * MIB, f"the plane's peak memory grew by {growth / MIB:.1f} MiB for 4 x 64 MiB uploads"


def _abandon(port: int) -> None:
    """A request whose client goes away in the middle of its body (a short body: the router
    reads it whole before choosing a replica, so the failure is always the router's to log)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
        time.sleep(0.002)


def _log_bytes(project: Project) -> int:
    return sum(p.stat().st_size for p in (project.state_dir / "logs").glob("plane.log*"))


def test_a_flood_of_failing_requests_writes_a_bounded_log(project: Project, adapters: Adapters) -> None:
    _serve(project, adapters)
    log = project.state_dir / "logs" / "plane.log"
    before = _log_bytes(project)
    for _ in range(300):
        _abandon(project.port)
    time.sleep(1.2)  # past the repeat window: the next record says how many were suppressed
    _abandon(project.port)
    wait_until(lambda: "suppressed" in log.read_text(), 10, "a suppressed-count line")
    assert _log_bytes(project) - before < 16 * 1024
    assert get(adapters.url + "/orders")[0] == 200


@pytest.mark.parametrize("name, value, refusal", [
    (MAX_CONNECTIONS_ENV, "lots", "is not a positive number"),
    (SPANS_QUIET_ENV, "often", "is not a number of 0 or more"),  # when router spans are held back
])
def test_a_bad_setting_in_the_environment_stops_the_plane_with_the_variable_named(
        project: Project, monkeypatch: pytest.MonkeyPatch, name: str, value: str, refusal: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(PlatformError, match=f"\\${name}='{value}' {refusal}"):
        ensure_plane(project.state_dir, timeout=15)
    assert stop_plane(project.state_dir).killed == 0
