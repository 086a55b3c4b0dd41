"""The router's own HTTP/1.1 server side and its fast path, over real sockets on 127.0.0.1.

An ``EnvironmentRouter`` runs in this process in front of scripted replicas (raw asyncio
servers that answer each request as the test says), with a stand-in supervisor that hands out
their ports. The first request to a replica opens a connection (the general path, a task per
request); later ones find it idle and take the fast path (``FastRelay``, no task). Every case
is checked on both, since each failure there has its own way back to the general path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from pipeline.core.model import Weights
from pipeline.local.http import fastpath
from pipeline.local.http.counters import CounterBook
from pipeline.local.http.listener import MAX_HEAD
from pipeline.local.http.router import EnvironmentRouter
from pipeline.local.http.rules import PathRule, WeightedPicker
from pipeline.local.replicas.supervisor import SlotKey
from tests.local.support.example import free_port_pairs

Reply = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # False: close the connection
OK = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\n"
      b"Content-Length: 5\r\n\r\nhello")


@dataclass(eq=False)
class FakeReplica:
    """What the router reads of a replica: its port and index, and the in-flight count it keeps."""

    port: int
    index: int
    inflight: int = 0


@dataclass
class FakeSpec:
    version: str = "v7"


@dataclass
class FakeSet:
    spec: FakeSpec = field(default_factory=FakeSpec)


class FakeSupervisor:
    """Round-robin over the scripted replicas, as ``Supervisor.pick`` does over healthy ones."""

    def __init__(self, ports: list[int]) -> None:
        self.replicas = [FakeReplica(port, i) for i, port in enumerate(ports)]
        self._next = 0

    def get(self, key: SlotKey) -> FakeSet:
        return FakeSet()

    def pick(self, key: SlotKey, exclude: frozenset[Any] = frozenset()) -> FakeReplica | None:
        for step in range(len(self.replicas)):
            replica = self.replicas[(self._next + step) % len(self.replicas)]
            if replica not in exclude:
                self._next = (self._next + step + 1) % len(self.replicas)
                return replica
        return None


@dataclass
class Upstream:
    """A scripted replica: ``heads`` it received, ``accepted`` connections."""

    reply: Reply
    heads: list[bytes] = field(default_factory=list)
    accepted: int = 0
    server: asyncio.Server | None = None

    async def start(self) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted += 1
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    self.heads.append(head)
                    if not await self.reply(head, writer):
                        break
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])


async def ok(head: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(OK)
    return True


def run(replies: list[Reply], check: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``check(ctx)`` with a router (port ``ctx.port``) in front of one upstream per reply."""

    async def main() -> None:
        upstreams = [Upstream(reply) for reply in replies]
        ports = [await u.start() for u in upstreams]
        supervisor = FakeSupervisor(ports)
        counters = CounterBook()
        port = free_port_pairs(1)[0]
        router = EnvironmentRouter("dev", port, supervisor=supervisor, counters=counters,  # type: ignore[arg-type]
                                   http=None)  # type: ignore[arg-type]
        route = router.put_route(PathRule("svc", "/*", 1))
        route.picker = WeightedPicker(Weights(100, 0))
        await router.start()
        router._pool.read_timeout = 1.0  # a replica that never answers costs a second
        try:
            async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as client:
                await check(Ctx(client, port, router, upstreams, supervisor, counters))
        finally:
            await router.stop()
            for u in upstreams:
                assert u.server is not None
                u.server.close()

    asyncio.run(main())


@dataclass
class Ctx:
    client: aiohttp.ClientSession
    port: int
    router: EnvironmentRouter
    upstreams: list[Upstream]
    supervisor: FakeSupervisor
    counters: CounterBook

    async def get(self, path: str = "/a", method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        async with self.client.request(method, path) as answer:
            return answer.status, dict(answer.headers), await answer.read()

    def counted(self) -> tuple[int, int]:
        slot = self.counters.peek("dev", "svc", "blue")
        return (slot.total_requests, slot.total_errors) if slot is not None else (0, 0)


@pytest.fixture(autouse=True)
def relayed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The requests the fast path took (``FastRelay.send`` still does its work)."""
    taken: list[str] = []
    send = fastpath.FastRelay.send

    def counted(self: fastpath.FastRelay, head: bytes, timeout: float) -> None:
        taken.append(head.split(b" ")[1].decode())
        send(self, head, timeout)

    monkeypatch.setattr(fastpath.FastRelay, "send", counted)
    return taken


def test_answers_come_back_tagged_over_one_kept_alive_replica_connection(relayed: list[str]) -> None:
    async def check(ctx: Ctx) -> None:
        for _ in range(3):  # the first opens the connection, the next two take the fast path
            status, headers, body = await ctx.get("/a?x=1")
            assert (status, body) == (200, b"hello")
            assert headers["X-Pipeline-Slot"] == "blue" and headers["X-Pipeline-Version"] == "v7"
            assert headers["Content-Type"] == "text/plain" and "Date" in headers
        assert ctx.upstreams[0].accepted == 1  # reused
        head = ctx.upstreams[0].heads[-1].decode()
        assert head.startswith("GET /a?x=1 HTTP/1.1\r\n") and "X-Forwarded-For: 127.0.0.1" in head
        assert "traceparent" not in head.lower()  # tracing is off in this process
        assert ctx.counted() == (3, 0)
        assert ctx.supervisor.replicas[0].inflight == 0
        assert relayed == ["/a?x=1", "/a?x=1"]  # the first request opened the connection

    run([ok], check)


def test_head_requests_get_no_body_on_either_path() -> None:
    async def head_reply(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")  # a HEAD answer has no body
        if not head.startswith(b"HEAD "):
            writer.write(b"hello")
        return True

    async def check(ctx: Ctx) -> None:
        for _ in range(2):
            status, headers, body = await ctx.get("/a", "HEAD")
            assert (status, body, headers["Content-Length"]) == (200, b"", "5")  # what GET would send
        status, _, body = await ctx.get("/a")  # the connection stayed in step
        assert (status, body) == (200, b"hello")
        assert ctx.upstreams[0].accepted == 1

    run([head_reply], check)


def test_a_connection_dropped_on_a_warm_replica_is_retried_on_another(relayed: list[str]) -> None:
    served = {"n": 0}

    async def drops_second(head: bytes, writer: asyncio.StreamWriter) -> bool:
        served["n"] += 1
        if served["n"] == 2:
            return False  # the kept-alive connection closes without an answer
        writer.write(OK)
        return True

    async def check(ctx: Ctx) -> None:
        assert (await ctx.get())[0] == 200  # replica 0 (connection opened)
        assert (await ctx.get())[0] == 200  # replica 1 (connection opened)
        status, _, body = await ctx.get()  # replica 0 again, fast path: dropped, retried on 1
        assert (status, body) == (200, b"hello")
        assert len(ctx.upstreams[1].heads) == 2
        assert relayed == ["/a"]  # the third, relayed and dropped; its retry took the general path
        assert ctx.counted() == (3, 0)
        assert all(r.inflight == 0 for r in ctx.supervisor.replicas)

    run([drops_second, ok], check)


def test_chunked_and_long_answers_on_the_fast_path_continue_on_the_general_one(relayed: list[str]) -> None:
    big = b"x" * (200 * 1024)
    replies = iter([
        OK,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchunk\r\n3\r\ned!\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(big), big),
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        OK,
    ])

    async def scripted(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(next(replies))
        return True

    async def check(ctx: Ctx) -> None:
        assert (await ctx.get())[2] == b"hello"
        assert (await ctx.get())[2] == b"chunked!"
        status, headers, body = await ctx.get()
        assert status == 200 and body == big and headers["X-Pipeline-Slot"] == "blue"
        assert (await ctx.get())[:1] == (201,)
        assert (await ctx.get())[2] == b"hello"
        assert ctx.upstreams[0].accepted == 1  # every answer ended cleanly: the connection was kept
        assert len(relayed) == 4

    run([scripted], check)


def test_a_malformed_answer_is_a_502_and_a_silent_replica_a_504() -> None:
    served = {"n": 0}

    async def bad_then_silent(head: bytes, writer: asyncio.StreamWriter) -> bool:
        served["n"] += 1
        if served["n"] == 1:
            writer.write(OK)
        elif served["n"] == 2:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n")
        # afterwards: never answers
        return True

    async def check(ctx: Ctx) -> None:
        assert (await ctx.get())[0] == 200
        status, headers, body = await ctx.get()  # fast path: malformed length
        assert status == 502 and b"malformed" in body and headers["X-Pipeline-Slot"] == "blue"
        status, _, body = await ctx.get()  # a new connection (the last one was closed); silent
        assert status == 504 and b"did not answer in time" in body
        status, _, body = await ctx.get()
        assert status == 504
        assert ctx.counted() == (4, 3)
        assert ctx.supervisor.replicas[0].inflight == 0

    run([bad_then_silent], check)


def test_pipelined_requests_are_answered_in_order_and_bad_heads_are_refused() -> None:
    async def echo_path(head: bytes, writer: asyncio.StreamWriter) -> bool:
        path = head.split(b" ")[1]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(path), path))
        return True

    async def check(ctx: Ctx) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", ctx.port)
        writer.write(b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5)))
        bodies = []
        for _ in range(5):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            bodies.append(await reader.readexactly(length))
        assert bodies == [b"/p%d" % i for i in range(5)]
        writer.close()

        for raw, status in ((b"NOT HTTP\r\n\r\n", b"400"),
                            (b"GET / HTTP/1.1\r\nX: " + b"y" * MAX_HEAD + b"\r\n\r\n", b"431")):
            reader, writer = await asyncio.open_connection("127.0.0.1", ctx.port)
            writer.write(raw)
            answer = await reader.read()  # then the router closes the connection
            assert answer.split(b" ")[1] == status, answer[:80]
            writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", ctx.port)
        writer.write(b"GET /old HTTP/1.0\r\n\r\n")
        answer = await reader.read()  # HTTP/1.0 without keep-alive: closed after the answer
        assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" in answer
        assert answer.endswith(b"/old")
        writer.close()

    run([echo_path], check)
