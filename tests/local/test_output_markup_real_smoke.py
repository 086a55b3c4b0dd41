"""A real smoke check against a real HTTP server whose error body is rich markup and HTML.

The service answers 500 with ``[/x] [bold]owned[/bold] <script>``; the test stage (the
real ``ServiceStageRunner`` over real HTTP) quotes the body in its reason; the engine rolls
back; the console (a terminal, live progress on) and the error renderer print the body as
it is, and the command's rollback completes.
"""

from __future__ import annotations

import dataclasses
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.console.render import ConsoleSink, make_console, print_error
from pipeline.core.errors import DeploymentFailed
from pipeline.core.model import ServiceRef, Slot
from pipeline.loadtest.stages import ServiceStageRunner
from pipeline.operations import Context, deploy
from pipeline.testing import FakeClock, FakePlatform, InMemoryStore, release
from tests.unit.support.engine import CANARY

BODY = "[/x] [bold]owned[/bold] <script>alert(1)</script>"
REF = ServiceRef("orders", "dev")


class _Service(BaseHTTPRequestHandler):
    """Healthy until the server is marked ``hostile``; then 500 with ``BODY``."""

    def do_GET(self) -> None:
        hostile = getattr(self.server, "hostile", False)
        payload = BODY.encode() if hostile else b"ok"
        self.send_response(500 if hostile else 200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def service() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_failed_smoke_check_quoting_markup_rolls_back_and_prints_it_as_it_is(
    service: ThreadingHTTPServer, tmp_path: Path
) -> None:
    buffer = io.StringIO()
    environ = {"NO_COLOR": "1"}
    terminal = make_console(stderr=True, environ=environ, file=buffer, width=300, force_terminal=True)
    url = f"http://127.0.0.1:{service.server_address[1]}"
    clock = FakeClock()
    store = InMemoryStore(clock)
    platform = FakePlatform.create()
    platform.compute.endpoint = lambda slot: url  # type: ignore[method-assign]
    stages = ServiceStageRunner("orders", root=tmp_path, route="/*", health_path="/health")
    ports = dataclasses.replace(platform.ports(), stages=stages)
    ctx = Context(
        store=store,
        locks=store,
        clock=clock,
        sink=ConsoleSink(terminal, interval=1, live=True),
        platform_for=lambda ref: ports,
        actor="alice",
        owner="alice@host:1",
    )
    assert deploy(ctx, REF, release("v1"), CANARY).phase.value == "succeeded"
    service.hostile = True  # type: ignore[attr-defined]

    state = deploy(ctx, REF, release("v2"), CANARY)

    assert state.phase.value == "rolled_back"
    assert BODY in state.reason
    assert platform.router.get_weights() is not None and platform.router.get_weights().of(Slot.BLUE) == 100
    print_error(DeploymentFailed(f"deployment of v2 ended rolled_back: {state.reason}"), terminal)
    shown = buffer.getvalue()
    assert f"rolled_back: {state.reason}" in shown
    assert f"error: deployment of v2 ended rolled_back: {state.reason}" in shown
