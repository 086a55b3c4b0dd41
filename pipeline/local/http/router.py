"""The HTTP front of one environment: a main listener and a test listener on 127.0.0.1.

Main listener (``port``): the first path rule that matches picks the service; the service's
weights pick the slot (smooth weighted round-robin, exact proportions); round-robin over
the slot's healthy replicas picks the process. A request refused by a replica (connection
refused, nothing was sent) is retried once on another healthy replica of the same slot;
a dropped connection or a broken response is retried likewise for idempotent methods (GET,
HEAD, OPTIONS, PUT, DELETE). Lambda rules go to the Lambda runtime, whose alias weights
choose the version.

Test listener (``port + 1``): the same rules, but every request reaches one slot only:
``/_slot/<blue|green>/...`` (prefix stripped) pins it; otherwise an ``X-Pipeline-Slot``
header; otherwise the slot provisioned most recently. Locust and curl need no headers.

Every answer for a slot, including the router's own 502/503/504, is counted in that
slot's per-second counters. Responses carry ``X-Pipeline-Slot`` and ``X-Pipeline-Version``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from pipeline.core.model import Slot, Weights
from pipeline.local.http.counters import CounterBook
from pipeline.local.http.rules import (
    PathRule,
    RuleTable,
    WeightedPicker,
    lambda_function_name,
    parse_slot,
)
from pipeline.local.replicas.replica import Replica
from pipeline.local.replicas.supervisor import SlotKey, Supervisor

LambdaInvoker = Callable[[str, web.Request, str], Awaitable[web.StreamResponse]]

_HOP_BY_HOP = frozenset(
    h.lower() for h in ("Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
                        "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length")
)
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_DROPPED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError)
_PIN_PREFIX = "/_slot/"
SLOT_HEADER = "X-Pipeline-Slot"
_UPSTREAM = aiohttp.ClientTimeout(total=60.0, sock_connect=5.0)  # 504 after a minute


@dataclass
class ServiceRoute:
    """A service's routing state on one environment's listeners (mutated by the control API)."""

    rule: PathRule
    picker: WeightedPicker | None = None
    test_slot: Slot | None = None

    @property
    def weights(self) -> Weights | None:
        return self.picker.weights if self.picker else None


class EnvironmentRouter:
    """Listeners of environment ``name`` on ``port`` (main) and ``port + 1`` (test)."""

    def __init__(self, name: str, port: int, *, supervisor: Supervisor, counters: CounterBook,
                 http: aiohttp.ClientSession, invoke_lambda: LambdaInvoker | None = None) -> None:
        self.name = name
        self.port = port
        self.rules = RuleTable()
        self.services: dict[str, ServiceRoute] = {}
        self._supervisor = supervisor
        self._counters = counters
        self._http = http
        self._invoke_lambda = invoke_lambda
        self._runners: list[web.AppRunner] = []

    @property
    def test_port(self) -> int:
        return self.port + 1

    async def start(self) -> None:
        """Bind both listeners; raises OSError (and binds nothing) if either port is taken."""
        try:
            for port, test in ((self.port, False), (self.test_port, True)):
                app = web.Application(client_max_size=64 * 1024 * 1024)
                app.router.add_route("*", "/{tail:.*}", self._handler(test))
                runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
                await runner.setup()
                self._runners.append(runner)
                await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        except OSError:
            await self.stop()
            raise

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    def put_route(self, rule: PathRule) -> ServiceRoute:
        """Add or replace ``rule.service``'s rule, keeping its weights and test slot."""
        route = self.services.get(rule.service)
        if route is None:
            route = self.services[rule.service] = ServiceRoute(rule)
        route.rule = rule
        self.rules.put(rule)
        return route

    def _handler(self, test: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._route(request, test)

        return handle

    async def _route(self, request: web.Request, test: bool) -> web.StreamResponse:
        path, target, pinned = request.path, request.rel_url.raw_path_qs, None
        if test and path.startswith(_PIN_PREFIX):
            name, _, rest = path[len(_PIN_PREFIX):].partition("/")
            pinned = parse_slot(name)
            if pinned is not None:
                path = "/" + rest
                raw = request.rel_url.raw_path_qs[len(_PIN_PREFIX) + len(name):]
                target = raw if raw.startswith("/") else "/" + raw
        rule = self.rules.match(path)
        if rule is None:
            return _error(404, f"no rule of environment {self.name} matches {path}")
        route = self.services[rule.service]
        if rule.kind == "lambda":
            if self._invoke_lambda is None:
                return _error(503, f"{rule.service} is a Lambda route but the Lambda runtime is not loaded")
            function = lambda_function_name(self.name, rule.service)
            return await self._invoke_lambda(function, request, rule.pattern)
        slot = self._choose_slot(route, request, test, pinned)
        if slot is None:
            why = "no slot is provisioned" if test else "no traffic weights are set"
            return _error(503, f"{rule.service} in {self.name}: {why}")
        return await self._forward(request, SlotKey(self.name, rule.service, slot.value), target)

    @staticmethod
    def _choose_slot(route: ServiceRoute, request: web.Request, test: bool,
                     pinned: Slot | None) -> Slot | None:
        if test:
            return pinned or parse_slot(request.headers.get(SLOT_HEADER)) or route.test_slot
        return route.picker.pick() if route.picker is not None else None

    async def _forward(self, request: web.Request, key: SlotKey, target: str) -> web.StreamResponse:
        started = time.monotonic()
        response = await self._proxy(request, key, target)
        response.headers[SLOT_HEADER] = key.slot
        replica_set = self._supervisor.get(key)
        if replica_set is not None:
            response.headers["X-Pipeline-Version"] = replica_set.spec.version
        latency_ms = (time.monotonic() - started) * 1000.0
        counters = self._counters.of(key.environment, key.service, key.slot)
        counters.record(time.time(), response.status, latency_ms)
        return response

    async def _proxy(self, request: web.Request, key: SlotKey, target: str) -> web.StreamResponse:
        body = await request.read()
        headers = _forward_headers(request)
        tried: frozenset[Replica] = frozenset()
        for attempt in range(2):
            replica = self._supervisor.pick(key, tried)
            if replica is None:
                if attempt:
                    break
                return _error(503, f"{key} has no healthy replica")
            tried |= {replica}
            replica.inflight += 1
            try:
                return await self._send(request.method, replica, target, headers, body)
            except aiohttp.ClientConnectorError:
                continue  # refused: nothing was sent, any method may go elsewhere
            except _DROPPED as exc:
                if request.method not in _IDEMPOTENT:
                    return _error(502, f"{key} replica {replica.index} dropped the connection: {exc}")
            except TimeoutError:
                return _error(504, f"{key} replica {replica.index} did not answer in time")
            except aiohttp.ClientError as exc:
                return _error(502, f"{key} replica {replica.index} failed: {type(exc).__name__} {exc}")
            finally:
                replica.inflight -= 1
        return _error(502, f"{key}: no replica accepted the request ({len(tried)} tried)")

    async def _send(self, method: str, replica: Replica, target: str, headers: CIMultiDict[str],
                    body: bytes) -> web.Response:
        url = URL(f"{replica.url}{target}", encoded=True)
        async with self._http.request(method, url, headers=headers, data=body or None, timeout=_UPSTREAM,
                                      allow_redirects=False, auto_decompress=False) as upstream:
            payload = await upstream.read()
            out = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP)
            return web.Response(status=upstream.status, reason=upstream.reason, body=payload, headers=out)


def _forward_headers(request: web.Request) -> CIMultiDict[str]:
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP)
    peer = request.remote or ""
    prior = headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    headers["X-Forwarded-Host"] = request.host
    headers["X-Forwarded-Proto"] = request.scheme
    return headers


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers={"X-Pipeline-Router": "local"})


async def close_quietly(router: EnvironmentRouter) -> None:
    """Stop ``router``'s listeners, ignoring errors (used on plane shutdown)."""
    try:
        await router.stop()
    except (OSError, RuntimeError, asyncio.CancelledError):
        return
