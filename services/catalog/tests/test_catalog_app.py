"""The catalog API over real HTTP: a server on a free port in a thread, a temp SQLite file.

Run with ``python -m pytest services/catalog/tests``. The module is loaded from its file under
a unique name so that every service's tests can run in one pytest session.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

APP_FILE = Path(__file__).resolve().parents[1] / "app.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("catalog_app", APP_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


app = _load()


def _serve(tmp_path: Path, fault: Any = None, version: str = "2.0.0") -> Iterator[str]:
    server = app.make_server("127.0.0.1", 0, str(tmp_path / "catalog.db"), fault or app.Fault(), version)
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
    for path in ("/health", "/catalog/health"):
        assert call(base + path) == (200, {"status": "ok", "service": "catalog"})
    for path in ("/version", "/catalog/version"):
        assert call(base + path) == (200, {"service": "catalog", "version": "2.0.0"})


def test_new_database_is_seeded_and_pages_by_id(base: str) -> None:
    status, listing = call(base + "/catalog")
    assert status == 200 and len(listing["products"]) == app.SEED_PRODUCTS
    status, page = call(base + "/catalog?limit=3")
    assert [p["id"] for p in page["products"]] == [1, 2, 3]
    assert call(base + "/catalog/2") == (200, {"id": 2, "name": "product 2", "price_cents": 299})


def test_created_product_can_be_read_back(base: str) -> None:
    status, product = call(base + "/catalog", "POST", {"name": "lamp", "price_cents": 1500})
    assert status == 201 and product["id"] == app.SEED_PRODUCTS + 1
    assert call(base + f"/catalog/{product['id']}") == (200, product)


@pytest.mark.parametrize(
    "body", [{}, {"name": "x"}, {"name": "", "price_cents": 1}, {"name": "x", "price_cents": -1}]
)
def test_invalid_product_is_refused_with_400(base: str, body: Any) -> None:
    status, payload = call(base + "/catalog", "POST", body)
    assert status == 400 and "price_cents" in payload["error"]


def test_unknown_product_and_unknown_route_are_404(base: str) -> None:
    assert call(base + "/catalog/999")[0] == 404
    assert call(base + "/catalog/x")[0] == 404
    assert call(base + "/orders")[0] == 404
    assert call(base + "/catalog?limit=501")[0] == 400


def test_seed_runs_once_so_restarts_keep_the_data(tmp_path: Path) -> None:
    for base in _serve(tmp_path):
        call(base + "/catalog", "POST", {"name": "kept", "price_cents": 1})
    for again in _serve(tmp_path):
        products = call(again + "/catalog?limit=500")[1]["products"]
        assert len(products) == app.SEED_PRODUCTS + 1 and products[-1]["name"] == "kept"


def test_fault_fails_exactly_its_share_of_catalog_requests_but_never_health(tmp_path: Path) -> None:
    for base in _serve(tmp_path, app.Fault(error_rate=0.25)):
        statuses = [call(base + "/catalog/1")[0] for _ in range(8)]
        assert statuses.count(500) == 2 and statuses.count(200) == 6
        assert call(base + "/catalog/health")[0] == 200


def test_fault_file_and_fail_rate_env_configure_the_release(tmp_path: Path) -> None:
    assert app.load_fault(tmp_path / "absent.json", {}) == app.Fault()
    (tmp_path / "fault.json").write_text('{"error_rate": 1, "latency_ms": 10}')
    assert app.load_fault(tmp_path / "fault.json", {}) == app.Fault(1.0, 10.0)
    assert app.load_fault(tmp_path / "fault.json", {"FAIL_RATE": "0"}).error_rate == 0.0


def test_a_release_can_slow_its_database_calls_by_file_or_environment(tmp_path: Path) -> None:
    (tmp_path / "fault.json").write_text('{"db_latency_ms": 300}')
    assert app.load_fault(tmp_path / "fault.json", {}) == app.Fault(db_latency_ms=300.0)
    assert app.load_fault(tmp_path / "absent.json", {"CATALOG_DB_EXTRA_MS": "120"}).db_latency_ms == 120.0


def test_answers_leave_at_once_on_a_kept_alive_connection(tmp_path: Path) -> None:
    """Headers and body are two writes: with Nagle's algorithm on, the body would wait for the
    client's delayed ACK (~40 ms a request), so every connection has TCP_NODELAY."""
    server = app.make_server("127.0.0.1", 0, str(tmp_path / "catalog.db"), app.Fault(), "1")
    accepted: list[socket.socket] = []
    finish = server.finish_request
    server.finish_request = lambda request, address: (accepted.append(request), finish(request, address))[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        client = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
        for _ in range(2):
            client.request("GET", "/catalog/1")
            assert client.getresponse().read()
        assert len(accepted) == 1  # one kept-alive connection
        assert accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        client.close()
    finally:
        server.shutdown()
        server.server_close()
        server.store.close()
        thread.join(5)
