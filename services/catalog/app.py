"""Catalog: the product list, a small JSON HTTP API that owns its own SQLite database.

Run it from this folder with ``PORT=8080 python -m app``. Stdlib only. Every path is
served under the ``/catalog`` prefix (ALB-style path routing without rewriting);
``/health`` and ``/version`` also answer at the root.

::

    GET  /health, /catalog/health    200 {"status": "ok"}            (never faulted)
    GET  /version, /catalog/version  200 {"service": "catalog", "version": ...}
    GET  /catalog[?limit=N]          200 {"products": [...]} by id (limit 1..500, default 50)
    GET  /catalog/<id>               200 the product; 404 if absent
    POST /catalog                    201 the created product; 400 on a bad body

A new database is seeded with ``SEED_PRODUCTS`` products (ids 1..N) so reads work at once.

Tracing (``telemetry.py``, optional): a span per request continuing the caller's
``traceparent``, and one per database call (``db.query``).

Settings (environment): ``PORT`` (default 8080), ``HOST`` (default 127.0.0.1; the image
sets 0.0.0.0), ``CATALOG_DB`` (default ``catalog.db`` in the working directory),
``VERSION`` or ``PIPELINE_VERSION`` (else the ``VERSION`` file next to this module, else
``0.0.0-dev``).

A "bad release" is a committed change: ``fault.json`` next to this module, e.g.
``{"error_rate": 0.5, "latency_ms": 200}``, makes exactly that share of ``/catalog``
requests answer 500 (spread evenly) and delays them all. ``FAIL_RATE`` overrides the rate.
``{"db_latency_ms": 300}`` makes every database call 300 ms slower instead (a slow query:
the time is spent inside the ``db.query`` span); ``CATALOG_DB_EXTRA_MS`` overrides it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SERVICE = "catalog"
PREFIX = "/catalog"
HERE = Path(__file__).resolve().parent
SEED_PRODUCTS = 20


def _telemetry_module() -> Any:
    """``telemetry.py`` beside this file (loaded by path: the tests load this module by path too)."""
    spec = importlib.util.spec_from_file_location(f"{SERVICE}_telemetry", HERE / "telemetry.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


telemetry = _telemetry_module()


# --- release knobs -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    """Injected misbehaviour of a release: a share of 500s and extra latency (milliseconds)."""

    error_rate: float = 0.0
    latency_ms: float = 0.0
    db_latency_ms: float = 0.0


def load_fault(path: Path = HERE / "fault.json", environ: dict[str, str] | None = None) -> Fault:
    """The fault of this release: ``fault.json`` if present, ``FAIL_RATE`` overriding its rate."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    rate = float(env.get("FAIL_RATE", data.get("error_rate", 0.0)))
    db_ms = float(env.get("CATALOG_DB_EXTRA_MS") or data.get("db_latency_ms", 0.0))
    return Fault(error_rate=min(1.0, max(0.0, rate)), latency_ms=float(data.get("latency_ms", 0.0)),
                 db_latency_ms=max(0.0, db_ms))


def read_version(environ: dict[str, str] | None = None, path: Path = HERE / "VERSION") -> str:
    """``VERSION``, else ``PIPELINE_VERSION`` (set by the local platform), else the file."""
    env = os.environ if environ is None else environ
    if env.get("VERSION") or env.get("PIPELINE_VERSION"):
        return env.get("VERSION") or env["PIPELINE_VERSION"]
    return path.read_text().strip() if path.exists() else "0.0.0-dev"


class FaultGate:
    """Decides which requests fail: exactly ``rate`` of them, spread evenly. Thread-safe."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self._count = 0
        self._lock = threading.Lock()

    def should_fail(self) -> bool:
        if self.fault.latency_ms:
            time.sleep(self.fault.latency_ms / 1000)
        if self.fault.error_rate <= 0:
            return False
        with self._lock:
            self._count += 1
            n = self._count
        return int(n * self.fault.error_rate) > int((n - 1) * self.fault.error_rate)


# --- storage -----------------------------------------------------------------------------


class ProductStore:
    """Products in one SQLite file, seeded when empty. One connection behind a lock."""

    def __init__(self, path: str, seed: int = SEED_PRODUCTS) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS products (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " name TEXT NOT NULL, price_cents INTEGER NOT NULL)"
            )
            (count,) = self._db.execute("SELECT COUNT(*) FROM products").fetchone()
            if count == 0:
                self._db.executemany(
                    "INSERT INTO products (name, price_cents) VALUES (?, ?)",
                    [(f"product {i}", 100 * i + 99) for i in range(1, seed + 1)],
                )

    def create(self, name: str, price_cents: int) -> dict[str, Any]:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO products (name, price_cents) VALUES (?, ?)", (name, price_cents)
            )
        return {"id": cur.lastrowid, "name": name, "price_cents": price_cents}

    def page(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, name, price_cents FROM products ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [_product(row) for row in rows]

    def get(self, product_id: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, name, price_cents FROM products WHERE id = ?", (product_id,)
            ).fetchone()
        return _product(row) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _product(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": row[0], "name": row[1], "price_cents": row[2]}


# --- HTTP --------------------------------------------------------------------------------


class CatalogServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: ProductStore, fault: Fault, version: str) -> None:
        super().__init__(address, CatalogHandler)
        self.store = store
        self.gate = FaultGate(fault)
        self.db_latency_ms = fault.db_latency_ms
        self.version = version
        self.telemetry = telemetry.Telemetry(SERVICE, version)

    @contextmanager
    def database(self, operation: str, table: str) -> Iterator[Any]:
        """One database call's span; a release's ``db_latency_ms`` is spent inside it."""
        with self.telemetry.database(operation, table) as span:
            if self.db_latency_ms:
                time.sleep(self.db_latency_ms / 1000)
            yield span


class CatalogHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: load generators reuse connections
    # headers and body leave in two writes: with Nagle's algorithm on, the body waits for the
    # client's delayed ACK of the headers, about 40 ms on every keep-alive request
    disable_nagle_algorithm = True
    server: CatalogServer

    def do_GET(self) -> None:
        self._traced("GET", self._get)

    def do_POST(self) -> None:
        self._traced("POST", self._post)

    def _traced(self, method: str, handle: Any) -> None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        route = path if not path[len(PREFIX) + 1:].isdigit() else PREFIX + "/{id}"
        with self.server.telemetry.server(method, route, self.headers) as span:
            self._span = span
            handle()

    def _get(self) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        if path in ("/health", f"{PREFIX}/health"):
            return self._send(200, {"status": "ok", "service": SERVICE})
        if path in ("/version", f"{PREFIX}/version"):
            return self._send(200, {"service": SERVICE, "version": self.server.version})
        if not path.startswith(PREFIX) or self.server.gate.should_fail():
            return self._refuse(path)
        if path == PREFIX:
            limit = _int(parse_qs(url.query).get("limit", ["50"])[0])
            if limit is None or not 1 <= limit <= 500:
                return self._send(400, {"error": "limit must be an integer within 1..500"})
            with self.server.database("SELECT", "products"):
                products = self.server.store.page(limit)
            return self._send(200, {"products": products})
        product_id = _int(path[len(PREFIX) + 1 :]) if path.startswith(PREFIX + "/") else None
        with self.server.database("SELECT", "products"):
            product = self.server.store.get(product_id) if product_id is not None else None
        if product is None:
            return self._send(404, {"error": f"no product at {path}"})
        return self._send(200, product)

    def _post(self) -> None:
        body = self._body() or {}
        path = urlsplit(self.path).path.rstrip("/")
        if path != PREFIX or self.server.gate.should_fail():
            return self._refuse(path)
        name, price = body.get("name"), body.get("price_cents")
        valid_price = isinstance(price, int) and not isinstance(price, bool) and price >= 0
        if not isinstance(name, str) or not name or not valid_price:
            return self._send(400, {"error": 'send {"name": "<name>", "price_cents": <int >= 0>}'})
        with self.server.database("INSERT", "products"):
            created = self.server.store.create(name, int(str(price)))
        return self._send(201, created)

    def _refuse(self, path: str) -> None:
        if path == PREFIX or path.startswith(PREFIX + "/"):
            return self._send(500, {"error": "injected fault (fault.json)"})
        return self._send(404, {"error": f"no route for {path}"})

    def _body(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        span = getattr(self, "_span", None)
        if span is not None:
            self.server.telemetry.failed(span, status)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("ACCESS_LOG"):
            super().log_message(format, *args)


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def make_server(host: str, port: int, db_path: str, fault: Fault, version: str) -> CatalogServer:
    """A bound (not yet serving) server; port 0 picks a free port (read ``server_address``)."""
    return CatalogServer((host, port), ProductStore(db_path), fault, version)


def main() -> None:
    server = make_server(
        os.environ.get("HOST", "127.0.0.1"),
        int(os.environ.get("PORT", "8080")),
        os.environ.get("CATALOG_DB", "catalog.db"),
        load_fault(),
        read_version(),
    )
    # SIGTERM drains: stop accepting, let in-flight requests finish, exit 0.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"{SERVICE} {server.version} listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.store.close()
        server.telemetry.close()


if __name__ == "__main__":
    main()
