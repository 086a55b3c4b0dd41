"""The orders API over real HTTP: a server on a free port in a thread, a temp SQLite file.

Run with ``python -m pytest services/orders/tests``. The module is loaded from its file under
a unique name so that every service's tests can run in one pytest session.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

APP_FILE = Path(__file__).resolve().parents[1] / "app.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("orders_app", APP_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


app = _load()


def _serve(tmp_path: Path, fault: Any = None, version: str = "1.2.3") -> Iterator[str]:
    server = app.make_server("127.0.0.1", 0, str(tmp_path / "orders.db"), fault or app.Fault(), version)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        server.store.close()
        thread.join(5)


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    yield from _serve(tmp_path)


def call(url: str, method: str = "GET", body: Any = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_health_and_version_answer_at_root_and_under_the_prefix(base: str) -> None:
    for path in ("/health", "/orders/health"):
        assert call(base + path) == (200, {"status": "ok", "service": "orders"})
    for path in ("/version", "/orders/version"):
        assert call(base + path) == (200, {"service": "orders", "version": "1.2.3"})


def test_created_order_can_be_read_back_and_listed_newest_first(base: str) -> None:
    status, first = call(base + "/orders", "POST", {"item": "book", "quantity": 2})
    assert status == 201 and first["item"] == "book" and first["quantity"] == 2
    _, second = call(base + "/orders", "POST", {"item": "pen"})
    assert second["quantity"] == 1
    assert call(base + f"/orders/{first['id']}") == (200, first)
    status, listing = call(base + "/orders?limit=1")
    assert status == 200 and listing["orders"] == [second]
    assert [o["id"] for o in call(base + "/orders")[1]["orders"]] == [second["id"], first["id"]]


@pytest.mark.parametrize(
    "body", [{}, {"item": ""}, {"item": "x", "quantity": 0}, {"item": "x", "quantity": True}, [1]]
)
def test_invalid_order_is_refused_with_400(base: str, body: Any) -> None:
    status, payload = call(base + "/orders", "POST", body)
    assert status == 400 and "item" in payload["error"]


def test_unknown_order_and_unknown_route_are_404(base: str) -> None:
    assert call(base + "/orders/999")[0] == 404
    assert call(base + "/orders/abc")[0] == 404
    assert call(base + "/elsewhere")[0] == 404
    assert call(base + "/orders?limit=0")[0] == 400


def test_database_outlives_the_process(tmp_path: Path) -> None:
    for base in _serve(tmp_path):
        call(base + "/orders", "POST", {"item": "kept"})
    for again in _serve(tmp_path):
        assert [o["item"] for o in call(again + "/orders")[1]["orders"]] == ["kept"]


def test_fault_fails_exactly_its_share_of_order_requests_but_never_health(tmp_path: Path) -> None:
    for base in _serve(tmp_path, app.Fault(error_rate=0.5)):
        statuses = [call(base + "/orders")[0] for _ in range(10)]
        assert statuses.count(500) == 5 and statuses.count(200) == 5
        assert all(call(base + "/health")[0] == 200 for _ in range(4))


def test_fault_file_and_fail_rate_env_configure_the_release(tmp_path: Path) -> None:
    assert app.load_fault(tmp_path / "absent.json", {}) == app.Fault()
    (tmp_path / "fault.json").write_text('{"error_rate": 0.25, "latency_ms": 5}')
    assert app.load_fault(tmp_path / "fault.json", {}) == app.Fault(0.25, 5.0)
    assert app.load_fault(tmp_path / "fault.json", {"FAIL_RATE": "2"}).error_rate == 1.0


def test_version_comes_from_env_then_file_then_default(tmp_path: Path) -> None:
    (tmp_path / "VERSION").write_text("4.5.6\n")
    assert app.read_version({"VERSION": "9"}, tmp_path / "VERSION") == "9"
    assert app.read_version({"PIPELINE_VERSION": "abc123"}, tmp_path / "VERSION") == "abc123"
    assert app.read_version({}, tmp_path / "VERSION") == "4.5.6"
    assert app.read_version({}, tmp_path / "none") == "0.0.0-dev"


def test_the_database_runs_at_most_its_connection_limit_of_queries_at_once() -> None:
    limit = app.ConnectionLimit(connections=2, query_ms=5)
    inside, peak, lock = 0, 0, threading.Lock()

    def query() -> None:
        nonlocal inside, peak
        with limit.connection():
            with lock:
                inside += 1
                peak = max(peak, inside)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=query) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert peak <= 2 and inside == 0


def test_requests_queue_for_a_connection_and_all_succeed(tmp_path: Path) -> None:
    server = app.make_server("127.0.0.1", 0, str(tmp_path / "orders.db"), app.Fault(), "1",
                             app.ConnectionLimit(connections=1, query_ms=20))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/orders"
    try:
        results: list[int] = []
        workers = [threading.Thread(target=lambda: results.append(call(url, "POST", {"item": "pen"})[0]))
                   for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(10)
        assert results == [201] * 6
        assert len(call(url)[1]["orders"]) == 6
    finally:
        server.shutdown()
        server.server_close()
        server.store.close()
        thread.join(5)


@pytest.mark.parametrize(("name", "value"), [("ORDERS_DB_CONNECTIONS", "many"), ("ORDERS_DB_QUERY_MS", "-5")])
def test_a_bad_database_setting_names_the_variable_and_its_value(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"{name}='{value}' is not valid: set a number from 0"):
        app.load_connection_limit({name: value})


def test_without_database_settings_queries_neither_wait_nor_take_time() -> None:
    limit = app.load_connection_limit({})
    assert (limit.connections, limit.query_ms) == (0, 0.0)


class _Catalog(BaseHTTPRequestHandler):
    """A stand-in catalog: product 3 costs 399 cents, anything else is unknown."""

    def do_GET(self) -> None:
        found = self.path == "/catalog/3"
        data = json.dumps({"id": 3, "name": "product 3", "price_cents": 399} if found
                          else {"error": "no product"}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def catalog(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Catalog)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("CATALOG_URL", url)
    yield url
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_quote_asks_catalog_for_the_price_and_counts_earlier_orders(base: str, catalog: str) -> None:
    call(base + "/orders", "POST", {"item": "3"})
    status, quote = call(base + "/orders/quote?product=3&quantity=2")
    assert status == 200
    assert (quote["total_cents"], quote["quantity"], quote["earlier_orders"]) == (798, 2, 1)
    assert quote["product"]["name"] == "product 3"


def test_a_quote_of_an_unknown_product_is_404_and_a_bad_query_400(base: str, catalog: str) -> None:
    assert call(base + "/orders/quote?product=9")[0] == 404
    assert call(base + "/orders/quote?product=x")[0] == 400
    assert call(base + "/orders/quote?product=3&quantity=0")[0] == 400


def test_a_quote_is_502_when_catalog_cannot_be_reached(base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("CATALOG_URL", f"http://127.0.0.1:{port}")  # nothing listens there
    status, payload = call(base + "/orders/quote?product=3")
    assert status == 502 and "catalog" in payload["error"]
