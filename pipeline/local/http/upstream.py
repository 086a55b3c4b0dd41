"""A lean HTTP/1.1 client from the router to its replicas, with keep-alive connections.

The router sends every request to a replica on 127.0.0.1 it started itself, so it needs
much less than a general HTTP client (no TLS, DNS, proxies, cookies, redirects or
compression) and per-request cost is what limits the router. One ``UpstreamPool`` per data
plane keeps idle connections per port; a connection is reused only after a response that
ended cleanly (HTTP/1.1, no ``Connection: close``, body read to its end).

Failures are classified the way the router's retry rule needs them:

- ``UpstreamRefused``: the connection could not be made, nothing was sent;
- ``UpstreamDropped``: the connection closed before a complete response head (the request
  may or may not have been processed);
- ``TimeoutError``: no connection within ``connect_timeout`` or no byte of the answer for
  ``read_timeout`` seconds.

Bodies are framed by ``Content-Length``, chunked transfer coding, or the end of the
connection; writing waits for the socket to drain and reading pauses the socket when
``HIGH_WATER`` bytes wait, so memory stays bounded whatever the body sizes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from pipeline.local.http.response_head import Head, UpstreamDropped, UpstreamRefused, parse_head
from pipeline.local.http.upstream_conn import HIGH_WATER, Connection

__all__ = ["HIGH_WATER", "Head", "UpstreamCall", "UpstreamDropped", "UpstreamPool", "UpstreamRefused"]


class UpstreamPool:
    """Keep-alive connections to replicas on 127.0.0.1, per port. Not thread-safe (one loop)."""

    def __init__(self, connect_timeout: float = 5.0, read_timeout: float = 60.0, idle_max: int = 64) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: dict[int, deque[Connection]] = {}
        self._idle_max = idle_max

    def idle(self, port: int) -> Connection | None:
        """An idle connection to the replica on ``port``, or None (none is kept)."""
        idle = self._idle.get(port)
        while idle:
            conn = idle.pop()
            if not conn.closed and not conn.buffer:
                return conn
            _close(conn)
        return None

    async def open(self, port: int) -> UpstreamCall:
        """A connection to the replica on ``port``: an idle one when there is one."""
        conn = self.idle(port)
        if conn is not None:
            return UpstreamCall(conn)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(lambda: Connection(self, port), "127.0.0.1", port)
        except OSError as exc:
            raise UpstreamRefused(f"127.0.0.1:{port} refused the connection: {exc.strerror or exc}") from exc
        return UpstreamCall(conn)

    def release(self, conn: Connection) -> None:
        idle = self._idle.setdefault(conn.port, deque())
        if conn.closed or conn.buffer or len(idle) >= self._idle_max:
            _close(conn)
        else:
            idle.append(conn)

    def discard(self, conn: Connection) -> None:
        """Close ``conn`` (its answer was not read to a clean end)."""
        _close(conn)

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                _close(conn)
        self._idle.clear()


def _close(conn: Connection) -> None:
    if conn.transport is not None:
        conn.transport.close()


class UpstreamCall:
    """One request/response on a connection; ``finish`` returns the connection to the pool."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.head: Head | None = None
        self._left: int | None = None  # body bytes still to read (None: chunked or until EOF)
        self._done = False

    async def send(self, head: bytes, body: bytes | AsyncIterator[bytes], chunked: bool) -> None:
        """Send the request head and its body (bytes, or chunks, chunk-coded when ``chunked``)."""
        conn = self.conn
        if isinstance(body, bytes):
            await conn.write(head + body)
            return
        await conn.write(head)
        async for chunk in body:
            if chunk:
                await conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            if conn.closed:
                return  # the replica answered early and closed: read that answer
        if chunked:
            await conn.write(b"0\r\n\r\n")

    async def response(self, method: str) -> Head:
        """Read the response head (1xx interim answers skipped)."""
        conn = self.conn
        while True:
            end = conn.buffer.find(b"\r\n\r\n")
            if end < 0:
                await conn.more(conn.pool.read_timeout)
                continue
            head = parse_head(conn.take(end + 4))
            if 100 <= head.status < 200:
                continue
            break
        if method == "HEAD" or head.status in (204, 304):
            head.length, head.chunked = 0, False
        self._left = head.length
        self.head = head
        return head

    async def read_all(self) -> bytes:
        """The rest of the body, whole (for a short ``Content-Length`` body)."""
        head, conn = self.head, self.conn
        if head is not None and not head.chunked and head.length is not None \
                and len(conn.buffer) >= head.length:
            self._done = True  # the usual case: the body came with the head
            return conn.take(head.length)
        parts = [chunk async for chunk in self.body()]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def body(self) -> AsyncIterator[bytes]:
        """The body as it arrives (de-chunked); the connection is released at its end."""
        head = self.head
        assert head is not None
        if head.chunked:
            async for chunk in self._chunks():
                yield chunk
        elif head.length is not None:
            async for chunk in self._sized():
                yield chunk
        else:
            head.keep_alive = False
            async for chunk in self._until_eof():
                yield chunk
        self._done = True

    def finish(self) -> None:
        """Return the connection for reuse when the exchange ended cleanly, else close it."""
        head = self.head
        if self._done and head is not None and head.keep_alive:
            self.conn.pool.release(self.conn)
        else:
            _close(self.conn)

    async def _sized(self) -> AsyncIterator[bytes]:
        conn = self.conn
        left = self._left or 0
        while left > 0:
            if not conn.buffer:
                await conn.more(conn.pool.read_timeout)
                continue
            chunk = conn.take(left)
            left -= len(chunk)
            yield chunk

    async def _until_eof(self) -> AsyncIterator[bytes]:
        conn = self.conn
        while True:
            if conn.buffer:
                yield conn.take(len(conn.buffer))
            elif conn.closed:
                return
            else:
                try:
                    await conn.more(conn.pool.read_timeout)
                except UpstreamDropped:
                    return

    async def _chunks(self) -> AsyncIterator[bytes]:
        conn = self.conn
        while True:
            size = int((await self._line()).split(b";", 1)[0], 16)
            if size == 0:
                while await self._line():  # trailers, up to the empty line
                    pass
                return
            while size > 0:
                if not conn.buffer:
                    await conn.more(conn.pool.read_timeout)
                    continue
                chunk = conn.take(size)
                size -= len(chunk)
                yield chunk
            await self._line()

    async def _line(self) -> bytes:
        conn = self.conn
        while (end := conn.buffer.find(b"\r\n")) < 0:
            await conn.more(conn.pool.read_timeout)
        return conn.take(end + 2)[:-2]
