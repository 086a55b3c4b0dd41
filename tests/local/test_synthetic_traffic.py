"""``HttpTrafficDriver`` against a real HTTP server: it sends at the asked rate until it
is stopped, and counts exactly the answers it got, per slot named by the router, with
the 5xx among them."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.core.model import Slot
from pipeline.core.ports import SyntheticCount
from pipeline.loadtest.smoke import SmokeRequest
from pipeline.loadtest.synthetic import HttpTrafficDriver, traffic_requests


class Router:
    """Answers like the local router: alternately blue and green, naming the slot in
    ``X-Pipeline-Slot`` (or not, with ``named=False``); every third green answer is a 500."""

    def __init__(self, named: bool = True) -> None:
        self.named = named
        self.served: Counter[tuple[str, int]] = Counter()
        self.paths: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._n = 0

    def answer(self, path: str) -> tuple[str, int]:
        with self._lock:
            self._n += 1
            slot = "blue" if self._n % 2 else "green"
            status = 500 if slot == "green" and self._n % 6 == 0 else 200
            self.served[(slot, status)] += 1
            self.paths[path] += 1
        return slot, status

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.served.values())


@pytest.fixture
def serve() -> Iterator[Callable[[Router], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(router: Router) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                slot, status = router.answer(self.path)
                self.send_response(status)
                if router.named:
                    self.send_header("X-Pipeline-Slot", slot)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_drives_until_stopped_and_counts_every_answer_per_slot(serve: Callable[[Router], str]) -> None:
    router = Router()
    driver = HttpTrafficDriver(serve(router), traffic_requests("/orders*"))
    started = time.time()
    driver.drive(40)
    driver.drive(40)  # idempotent: one set of threads
    until(lambda: router.total >= 30)
    driver.stop()
    sent = router.total
    time.sleep(0.3)
    assert router.total == sent  # nothing after stop()
    window = (started - 1, time.time() + 1)
    blue, green = driver.sent(Slot.BLUE, *window), driver.sent(Slot.GREEN, *window)
    assert blue == SyntheticCount(router.served[("blue", 200)], 0)
    assert green == SyntheticCount(router.served[("green", 200)] + router.served[("green", 500)],
                                   router.served[("green", 500)])
    assert blue.requests + green.requests == driver.total == sent
    assert green.errors > 0
    assert router.paths == Counter({"/orders": sent})
    assert driver.sent(Slot.BLUE, started - 100, started - 50) == SyntheticCount(0)  # an earlier window


def test_answers_that_name_no_slot_are_not_claimed(serve: Callable[[Router], str]) -> None:
    router = Router(named=False)
    driver = HttpTrafficDriver(serve(router), (SmokeRequest("GET", "/"),))
    driver.drive(50)
    until(lambda: router.total >= 5)
    driver.stop()
    assert driver.sent(Slot.BLUE, 0, time.time() + 1) is None
    assert driver.total == router.total


def test_requests_are_the_smoke_events_of_a_function_or_the_read_path_of_a_service() -> None:
    assert traffic_requests("/catalog*") == (SmokeRequest("GET", "/catalog"),)
    events = ({"path": "/notify", "body": {"to": "a@example.com", "template": "welcome"}},)
    (request,) = traffic_requests("/notify*", events)
    assert (request.method, request.path) == ("POST", "/notify")
    assert b"welcome" in request.body
