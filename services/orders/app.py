"""Orders: a small JSON HTTP API that owns its own SQLite database.

Run it from this folder with ``PORT=8080 python -m app``. Stdlib only, so it starts in
well under a second. Every path is served under the ``/orders`` prefix so that ALB-style
path routing works without rewriting; ``/health`` and ``/version`` also answer at the root.

::

    GET  /health, /orders/health     200 {"status": "ok"}           (never faulted)
    GET  /version, /orders/version   200 {"service": "orders", "version": ...}
    POST /orders                     201 the created order; 400 on a bad body
    GET  /orders[?limit=N]           200 {"orders": [...]} newest first (limit 1..500, default 50)
    GET  /orders/<id>                200 the order; 404 if absent
    GET  /orders/quote?product=N[&quantity=Q]   200 the price of Q of catalog product N (asks
                                     catalog, counts earlier orders); 404 unknown product; 502
                                     catalog failed

Catalog is reached at ``CATALOG_URL`` (e.g. ``http://catalog.internal``); without it, through
the router the request came from (``X-Forwarded-Host``, set by the local router), else the
request's ``Host``: every path of the environment is served there.

Tracing (``telemetry.py``, optional): a span per request continuing the caller's
``traceparent``, one per database call (``db.query``) and one per call to catalog, which
carries the trace on.

Settings (environment): ``PORT`` (default 8080), ``HOST`` (default 127.0.0.1; the image
sets 0.0.0.0), ``ORDERS_DB`` (default ``orders.db`` in the working directory),
``VERSION`` or ``PIPELINE_VERSION`` (else the ``VERSION`` file next to this module, else
``0.0.0-dev``).

The database behaves like a server with a connection limit when asked to:
``ORDERS_DB_CONNECTIONS=N`` lets at most N queries run at once (the others wait for a free
connection, in arrival order of the lock) and ``ORDERS_DB_QUERY_MS=T`` makes each query hold
its connection T milliseconds. Unset (or 0), queries neither wait nor take extra time. With
N connections and T ms a query, the database serves at most N * 1000 / T queries a second:
a step-load ramp beyond that shows latency growing in the backend while errors stay at 0.

A "bad release" is a committed change: ``fault.json`` next to this module, e.g.
``{"error_rate": 0.5, "latency_ms": 200}``, makes exactly that share of ``/orders``
requests answer 500 (deterministically: every second one) and delays them all.
``FAIL_RATE`` in the environment overrides ``error_rate``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qs, urlsplit
from urllib.request import Request, urlopen

SERVICE = "orders"
PREFIX = "/orders"
HERE = Path(__file__).resolve().parent
CATALOG_TIMEOUT = 5.0


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


def load_fault(path: Path = HERE / "fault.json", environ: dict[str, str] | None = None) -> Fault:
    """The fault of this release: ``fault.json`` if present, ``FAIL_RATE`` overriding its rate."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    rate = float(env.get("FAIL_RATE", data.get("error_rate", 0.0)))
    return Fault(error_rate=min(1.0, max(0.0, rate)), latency_ms=float(data.get("latency_ms", 0.0)))


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


class ConnectionLimit:
    """A database's connection limit: at most ``connections`` queries at once (0: no limit),
    each holding its connection ``query_ms`` milliseconds. Thread-safe."""

    def __init__(self, connections: int = 0, query_ms: float = 0.0) -> None:
        self.connections, self.query_ms = connections, query_ms
        self._free = threading.BoundedSemaphore(connections) if connections > 0 else None

    @contextmanager
    def connection(self) -> Iterator[None]:
        """Hold a connection for one query: wait for a free one, then the query's time."""
        if self._free is not None:
            self._free.acquire()
        try:
            if self.query_ms:
                time.sleep(self.query_ms / 1000)
            yield
        finally:
            if self._free is not None:
                self._free.release()


def load_connection_limit(environ: dict[str, str] | None = None) -> ConnectionLimit:
    """``ORDERS_DB_CONNECTIONS`` and ``ORDERS_DB_QUERY_MS``; ``ValueError`` naming the variable,
    its value and what it takes when one is not a number in range."""
    env = os.environ if environ is None else environ
    values: list[float] = []
    for name, kind in (("ORDERS_DB_CONNECTIONS", int), ("ORDERS_DB_QUERY_MS", float)):
        raw = env.get(name, "").strip() or "0"
        try:
            value = kind(raw)
        except ValueError:
            value = -1
        if not 0 <= value <= 100_000:
            raise ValueError(f"{name}={raw!r} is not valid: set a number from 0 to 100000 (0: no limit)")
        values.append(value)
    return ConnectionLimit(int(values[0]), values[1])


class OrderStore:
    """Orders in one SQLite file. One connection behind a lock: safe from many threads."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " item TEXT NOT NULL, quantity INTEGER NOT NULL, created_at REAL NOT NULL)"
            )

    def create(self, item: str, quantity: int) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO orders (item, quantity, created_at) VALUES (?, ?, ?)", (item, quantity, now)
            )
        return {"id": cur.lastrowid, "item": item, "quantity": quantity, "created_at": now}

    def recent(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, item, quantity, created_at FROM orders ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_order(row) for row in rows]

    def get(self, order_id: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, item, quantity, created_at FROM orders WHERE id = ?", (order_id,)
            ).fetchone()
        return _order(row) if row else None

    def count_item(self, item: str) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM orders WHERE item = ?", (item,)).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _order(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": row[0], "item": row[1], "quantity": row[2], "created_at": row[3]}


# --- HTTP --------------------------------------------------------------------------------


class OrdersServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: OrderStore, fault: Fault, version: str,
                 db: ConnectionLimit | None = None) -> None:
        super().__init__(address, OrdersHandler)
        self.store = store
        self.db = db or ConnectionLimit()
        self.gate = FaultGate(fault)
        self.version = version
        self.telemetry = telemetry.Telemetry(SERVICE, version)


class OrdersHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: load generators reuse connections
    # headers and body leave in two writes: with Nagle's algorithm on, the body waits for the
    # client's delayed ACK of the headers, about 40 ms on every keep-alive request
    disable_nagle_algorithm = True
    server: OrdersServer

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
            with self.server.telemetry.database("SELECT", "orders"), self.server.db.connection():
                orders = self.server.store.recent(limit)
            return self._send(200, {"orders": orders})
        if path == PREFIX + "/quote":
            return self._quote(parse_qs(url.query))
        order_id = _int(path[len(PREFIX) + 1 :]) if path.startswith(PREFIX + "/") else None
        with self.server.telemetry.database("SELECT", "orders"), self.server.db.connection():
            order = self.server.store.get(order_id) if order_id is not None else None
        if order is None:
            return self._send(404, {"error": f"no order at {path}"})
        return self._send(200, order)

    def _post(self) -> None:
        body = self._body()
        path = urlsplit(self.path).path.rstrip("/")
        if path != PREFIX or self.server.gate.should_fail():
            return self._refuse(path)
        item, quantity = (body or {}).get("item"), (body or {}).get("quantity", 1)
        valid_quantity = isinstance(quantity, int) and not isinstance(quantity, bool) and quantity >= 1
        if not isinstance(item, str) or not item or not valid_quantity:
            return self._send(400, {"error": 'send {"item": "<name>", "quantity": <int >= 1>}'})
        with self.server.telemetry.database("INSERT", "orders"), self.server.db.connection():
            created = self.server.store.create(item, int(quantity))
        return self._send(201, created)

    def _quote(self, query: dict[str, list[str]]) -> None:
        product, quantity = _int(query.get("product", [""])[0]), _int(query.get("quantity", ["1"])[0])
        if product is None or quantity is None or quantity < 1:
            return self._send(400, {"error": "send ?product=<id>&quantity=<int >= 1>"})
        with self.server.telemetry.database("SELECT", "orders"), self.server.db.connection():
            earlier = self.server.store.count_item(str(product))
        status, answer = self._catalog(f"/catalog/{product}")
        if status == 404:
            return self._send(404, {"error": f"catalog has no product {product}"})
        if status != 200 or not isinstance(answer.get("price_cents"), int):
            return self._send(502, {"error": f"catalog answered {status}"})
        return self._send(200, {"product": answer, "quantity": quantity, "earlier_orders": earlier,
                                "total_cents": answer["price_cents"] * quantity})

    def _catalog(self, path: str) -> tuple[int, dict[str, Any]]:
        """GET ``path`` from catalog (see the module docstring for where): (status, JSON body)."""
        base = os.environ.get("CATALOG_URL") or \
            f"http://{self.headers.get('X-Forwarded-Host') or self.headers.get('Host') or '127.0.0.1'}"
        url, headers = base.rstrip("/") + path, {"Accept": "application/json"}
        with self.server.telemetry.call("catalog", "GET", url, headers) as span:
            try:
                with urlopen(Request(url, headers=headers), timeout=CATALOG_TIMEOUT) as answer:
                    status, raw = answer.status, answer.read()
            except HTTPError as exc:
                status, raw = exc.code, exc.read()
            except (URLError, OSError) as exc:
                span.set_attribute("error.type", type(exc).__name__)
                status, raw = 502, b""
            self.server.telemetry.failed(span, status)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return status, data if isinstance(data, dict) else {}

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


def make_server(host: str, port: int, db_path: str, fault: Fault, version: str,
                db: ConnectionLimit | None = None) -> OrdersServer:
    """A bound (not yet serving) server; port 0 picks a free port (read ``server_address``)."""
    return OrdersServer((host, port), OrderStore(db_path), fault, version, db)


def main() -> None:
    try:
        db = load_connection_limit()
    except ValueError as exc:
        print(f"{SERVICE}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    server = make_server(
        os.environ.get("HOST", "127.0.0.1"),
        int(os.environ.get("PORT", "8080")),
        os.environ.get("ORDERS_DB", "orders.db"),
        load_fault(),
        read_version(),
        db,
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
