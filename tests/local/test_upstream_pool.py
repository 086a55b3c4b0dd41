"""The router's HTTP/1.1 client to replicas, against real sockets on 127.0.0.1: framing
(Content-Length, chunked, until EOF), connection reuse, and how failures are classified
(refused, dropped, timed out) for the router's retry rule."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from pipeline.local.http.upstream import UpstreamDropped, UpstreamPool, UpstreamRefused

Reply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
GET = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def _with_server(reply: Reply, body: Callable[[UpstreamPool, int], Awaitable[None]]) -> int:
    """Run ``body`` against a server answering with ``reply``; returns the connections it accepted."""
    accepted = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                await reply(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = UpstreamPool(read_timeout=0.5)
    try:
        await body(pool, port)
    finally:
        pool.close()
        server.close()
    return accepted


async def _get(pool: UpstreamPool, port: int) -> tuple[int, bytes]:
    call = await pool.open(port)
    try:
        await call.send(GET, b"", chunked=False)
        head = await call.response("GET")
        return head.status, await call.read_all()
    finally:
        call.finish()


def test_sized_and_chunked_answers_are_read_whole_and_the_connection_is_reused() -> None:
    answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
               b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n"]

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answers.pop(0) if answers else b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()

    async def body(pool: UpstreamPool, port: int) -> None:
        assert await _get(pool, port) == (200, b"hello")
        assert await _get(pool, port) == (201, b"abcde")
        assert await _get(pool, port) == (204, b"")

    assert asyncio.run(_with_server(reply, body)) == 1


def test_an_answer_without_length_ends_with_the_connection_which_is_not_reused() -> None:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    async def body(pool: UpstreamPool, port: int) -> None:
        assert await _get(pool, port) == (200, b"until the end")
        assert await _get(pool, port) == (200, b"until the end")

    assert asyncio.run(_with_server(reply, body)) == 2


def test_failures_are_classified_refused_dropped_or_timed_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")
        await writer.drain()
        writer.close()

    async def times_out(pool: UpstreamPool, port: int) -> None:
        with pytest.raises(TimeoutError):
            await _get(pool, port)

    async def dropped(pool: UpstreamPool, port: int) -> None:
        with pytest.raises(UpstreamDropped):
            await _get(pool, port)

    asyncio.run(_with_server(silent, times_out))
    asyncio.run(_with_server(hang_up, dropped))
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(UpstreamRefused):
        asyncio.run(_get(UpstreamPool(), port))
