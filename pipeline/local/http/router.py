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

A service with an ``api:`` block is behind its edge on the main listener (keys, usage
plans, CIDR lists, response cache: ``pipeline.local.http.edge``); refusals and cache hits
never reach a slot. Every answer for a slot, including the router's own 502/503/504, is
counted in that slot's per-second counters. Responses carry ``X-Pipeline-Slot`` and ``X-Pipeline-Version``.

Bodies stream in both directions unless small (``pipeline.local.http.proxy``); connections
are capped and must send their request head in time (``pipeline.local.http.limits``); in the
plane the listeners run on the data plane's own loop and thread
(``pipeline.local.http.dataplane``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp

from pipeline.core.model import Slot
from pipeline.local.http.counters import CounterBook
from pipeline.local.http.dataplane import DataPlane
from pipeline.local.http.edge import Edge, EdgeBook
from pipeline.local.http.fastpath import FastRelay, spawn
from pipeline.local.http.limits import ConnectionGate, RouterLimits
from pipeline.local.http.listener import Listener, serve
from pipeline.local.http.proxy import Exchange, error
from pipeline.local.http.rules import (
    PathRule,
    RuleTable,
    lambda_function_name,
    parse_slot,
)
from pipeline.local.http.slots import ServiceRoute, SlotTarget
from pipeline.local.http.tracing import RequestTrace, ended
from pipeline.local.http.tracing import begin as request_span
from pipeline.local.http.upstream import UpstreamPool
from pipeline.local.messages import Answer, Request
from pipeline.local.replicas.supervisor import SlotKey, Supervisor

LambdaInvoker = Callable[[str, Request, str], Awaitable[Answer]]

_PIN_PREFIX = "/_slot/"
_FAST_METHODS = frozenset({"GET", "HEAD"})
SLOT_HEADER = "X-Pipeline-Slot"

class EnvironmentRouter:
    """Listeners of environment ``name`` on ``port`` (main) and ``port + 1`` (test).

    With a ``data_plane`` the listeners run on its loop and use its upstream session and
    connection gate (``start``/``stop`` may be awaited from another loop); without one they
    run on the caller's loop with their own connections and a gate of default limits. ``http``
    is not used (kept for callers that pass the plane's session).
    """

    def __init__(self, name: str, port: int, *, supervisor: Supervisor, counters: CounterBook,
                 http: aiohttp.ClientSession, invoke_lambda: LambdaInvoker | None = None,
                 data_plane: DataPlane | None = None, edges: EdgeBook | None = None) -> None:
        self.name = name
        self.edges = edges  # the services' api rules, in front of the main listener only
        self.port = port
        self.rules = RuleTable()
        self.services: dict[str, ServiceRoute] = {}
        self._supervisor = supervisor
        self._counters = counters
        self._pool = data_plane.pool if data_plane is not None else UpstreamPool()
        self._data_plane = data_plane
        self._gate: ConnectionGate | None = data_plane.gate if data_plane is not None else None
        self._invoke_lambda = invoke_lambda
        self._servers: list[asyncio.Server] = []
        self._connections: set[Listener] = set()
        self._slot_targets: dict[tuple[str, Slot], SlotTarget] = {}

    @property
    def test_port(self) -> int:
        return self.port + 1

    async def start(self) -> None:
        """Bind both listeners; raises OSError (and binds nothing) if either port is taken."""
        if self._data_plane is not None:
            await self._data_plane.call(self._start())
        else:
            await self._start()

    async def stop(self) -> None:
        if self._data_plane is not None and not self._data_plane.loop.is_closed():
            await self._data_plane.call(self._stop())
        else:
            await self._stop()

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._gate is None:
            self._gate = ConnectionGate(RouterLimits(), loop)
        try:
            for port, test in ((self.port, False), (self.test_port, True)):
                self._servers.append(await serve(self._handler(test), "127.0.0.1", port, self._gate.wrap,
                                                 self._connections, self._fast(test)))
        except OSError:
            await self._stop()
            raise

    async def _stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for connection in list(self._connections):  # idle ones close now, busy ones once answered
            connection.shut()

    def put_route(self, rule: PathRule) -> ServiceRoute:
        """Add or replace ``rule.service``'s rule, keeping its weights and test slot."""
        route = self.services.get(rule.service)
        if route is None:
            route = self.services[rule.service] = ServiceRoute(rule)
        route.rule = rule
        self.rules.put(rule)
        return route

    def _handler(self, test: bool) -> Callable[[Request], Awaitable[Answer]]:
        gate = self._gate
        assert gate is not None

        async def handle(request: Request) -> Answer:
            transport = request.transport
            gate.request_started(transport)
            try:
                return await self._route(request, test)
            finally:
                gate.request_done(transport)

        return handle

    def _fast(self, test: bool) -> Callable[[Request, Callable[[Answer], None]], bool]:
        """The listener's fast path (``proxy.FastRelay``): a bodiless GET or HEAD on a plain
        route, to a replica with an idle kept-alive connection, is proxied without a task.
        Returns False (before any choice is made) for a request the general path must take;
        once a slot is chosen, the request is answered through ``done`` in every case."""
        gate = self._gate
        assert gate is not None
        idle_timeout = gate.limits.body_idle_timeout

        def fast(request: Request, done: Callable[[Answer], None]) -> bool:
            if request.method not in _FAST_METHODS:
                return False
            path, target, pinned = self._target(request, test)
            rule = self.rules.match(path)
            if rule is None or rule.kind == "lambda" or (
                    self.edges is not None and not test and self.edges.get(self.name, rule.service)):
                return False
            route = self.services[rule.service]
            slot = self._choose_slot(route, request, test, pinned)
            if slot is None:
                return False
            transport = request.transport
            gate.request_started(transport)
            traced = request_span(request, self.name, rule.service, rule.pattern)
            to = self._slot_target(rule.service, slot)
            key = to.key
            started = time.monotonic()
            exchange = Exchange(self._pool, request, target, to.tags, idle_timeout,
                                traced.headers if traced is not None else None, to.tag_lines)

            def answered(answer: Answer) -> None:
                answer = self._settle(exchange, answer, to, started, traced)
                gate.request_done(transport)
                done(answer)

            replica = self._supervisor.pick(key)
            conn = self._pool.idle(replica.port or 0) if replica is not None else None
            if replica is None or conn is None:  # no kept-alive connection yet: the general path
                spawn(exchange.proxy(key, self._supervisor, first=replica), answered)
                return True
            relay = FastRelay(exchange, key, self._supervisor, replica, conn, answered, request.method)
            relay.send(exchange.head(), self._pool.read_timeout)
            return True

        return fast

    def _target(self, request: Request, test: bool) -> tuple[str, str, Slot | None]:
        """The path rules match, the target sent upstream and the slot pinned by ``/_slot/<slot>/``
        (test listener only)."""
        path, target, pinned = request.path, request.target, None
        if test and path.startswith(_PIN_PREFIX):
            name, _, rest = path[len(_PIN_PREFIX):].partition("/")
            pinned = parse_slot(name)
            if pinned is not None:
                path = "/" + rest
                raw = request.target[len(_PIN_PREFIX) + len(name):]
                target = raw if raw.startswith("/") else "/" + raw
        return path, target, pinned

    async def _route(self, request: Request, test: bool, edge_passed: bool = False,
                     traced: RequestTrace | None = None) -> Answer:
        path, target, pinned = self._target(request, test)
        rule = self.rules.match(path)
        if rule is None:
            return error(404, f"no rule of environment {self.name} matches {path}")
        edge = self.edges.get(self.name, rule.service) if self.edges and not (test or edge_passed) else None
        if edge is not None:  # pipeline.local.http.edge: keys, CIDRs, throttles, cache; then back here
            return await self._through_edge(edge, request, test, rule)
        route = self.services[rule.service]
        if traced is None:
            traced = request_span(request, self.name, rule.service, rule.pattern)  # None: tracing off
        if rule.kind == "lambda":
            return await self._to_lambda(rule, request, traced)
        slot = self._choose_slot(route, request, test, pinned)
        if slot is None:
            why = "no slot is provisioned" if test else "no traffic weights are set"
            return ended(traced, error(503, f"{rule.service} in {self.name}: {why}"))
        return await self._forward(request, SlotKey(self.name, rule.service, slot.value), target, traced)

    async def _through_edge(self, edge: Edge, request: Request, test: bool, rule: PathRule) -> Answer:
        """``rule``'s route behind its edge; the router's span covers the edge's own answers too."""
        traced = request_span(request, self.name, rule.service, rule.pattern)
        answer = await edge.serve(request, lambda: self._route(request, test, True, traced))
        if traced is not None:
            traced.end(answer.status, answer=answer.headers)  # a refusal or cache hit; else ended already
        return answer

    async def _to_lambda(self, rule: PathRule, request: Request, traced: RequestTrace | None) -> Answer:
        if self._invoke_lambda is None:
            why = f"{rule.service} is a Lambda route but the Lambda runtime is not loaded"
            return ended(traced, error(503, why))
        function = lambda_function_name(self.name, rule.service)
        if traced is None:
            return await self._invoke_lambda(function, request, rule.pattern)
        answer = await self._invoke_lambda(function, traced.forwarded(request), rule.pattern)
        traced.end(answer.status, answer=answer.headers)
        return answer

    @staticmethod
    def _choose_slot(route: ServiceRoute, request: Request, test: bool,
                     pinned: Slot | None) -> Slot | None:
        if test:
            return pinned or parse_slot(request.headers.get(SLOT_HEADER)) or route.test_slot
        return route.picker.pick() if route.picker is not None else None

    async def _forward(self, request: Request, key: SlotKey, target: str,
                       traced: RequestTrace | None = None) -> Answer:
        started = time.monotonic()
        to = self._slot_target(key.service, Slot(key.slot))
        exchange = Exchange(self._pool, request, target, to.tags, self._limits.body_idle_timeout,
                            traced.headers if traced is not None else None,  # upstream: the router's span
                            to.tag_lines)
        response = await exchange.proxy(key, self._supervisor)
        return self._settle(exchange, response, to, started, traced)

    def _slot_target(self, service: str, slot: Slot) -> SlotTarget:
        """What answers for ``service``'s ``slot`` need (kept while the slot's replica set is
        the same one: a new release gets a new set)."""
        found = self._slot_targets.get((service, slot))
        if found is not None and self._supervisor.get(found.key) is found.replicas:
            return found
        key = SlotKey(self.name, service, slot.value)
        replica_set = self._supervisor.get(key)
        tags = {SLOT_HEADER: key.slot}
        if replica_set is not None:
            tags["X-Pipeline-Version"] = replica_set.spec.version
        made = SlotTarget(key, replica_set, tags, self._counters.of(self.name, service, slot.value))
        self._slot_targets[(service, slot)] = made
        return made

    def _settle(self, exchange: Exchange, response: Answer, to: SlotTarget, started: float,
                traced: RequestTrace | None) -> Answer:
        """Count ``response`` in the slot's counters and end the request's span."""
        if not response.streamed and not response.proxied:  # the router's own answer
            response.headers.update(to.tags)
        status = exchange.outcome or response.status
        latency_ms = (time.monotonic() - started) * 1000.0
        to.counters.record(time.time(), status, latency_ms)
        if traced is not None:
            traced.end(status, slot=to.key.slot, release=to.tags.get("X-Pipeline-Version"))
        return response

    @property
    def _limits(self) -> RouterLimits:
        return self._gate.limits if self._gate is not None else RouterLimits()


async def close_quietly(router: EnvironmentRouter) -> None:
    """Stop ``router``'s listeners, ignoring errors (used on plane shutdown)."""
    try:
        await router.stop()
    except (OSError, RuntimeError, asyncio.CancelledError):
        return
