"""One keep-alive connection from the router to a replica (``UpstreamPool``'s unit).

``Connection`` buffers what the replica sends and hands it on: to a task waiting in
``more`` (``pipeline.local.http.upstream.UpstreamCall``), or to a ``Relay`` that reads the
answer as it arrives (the router's fast path). One lazily re-armed timer per connection
enforces the read timeout; reading pauses above ``HIGH_WATER`` buffered bytes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol, cast

from pipeline.local.http.drain import Drain
from pipeline.local.http.response_head import UpstreamDropped

if TYPE_CHECKING:
    from pipeline.local.http.upstream import UpstreamPool

HIGH_WATER = 256 * 1024
"""Bytes of a response body buffered before reading from the replica pauses."""


class Relay(Protocol):
    """Reads a response off a connection as it arrives, without a task waiting on it (the
    router's fast path, ``pipeline.local.http.proxy.FastRelay``)."""

    def data(self) -> None: ...
    def lost(self, exc: Exception | None) -> None: ...
    def expired(self) -> None: ...


class Connection(asyncio.Protocol):
    """One connection to a replica: buffers what arrives and wakes the reader (a task
    waiting in ``more``, or a ``Relay``)."""

    def __init__(self, pool: UpstreamPool, port: int) -> None:
        self.pool = pool
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.closed = False
        self.error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain = Drain()
        self._paused = False
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.relay: Relay | None = None
        self._loop = asyncio.get_running_loop()  # the pool's (made on it)

    # --- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        if self.relay is not None:
            self.relay.data()
        else:
            self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        if self.relay is not None:
            self.relay.lost(None)
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.relay is not None:
            self.relay.lost(exc)
        self._wake()
        self._drain.fail(UpstreamDropped("the replica closed the connection"))

    def pause_writing(self) -> None:
        self._drain.pause()

    def resume_writing(self) -> None:
        self._drain.resume()

    # --- used by the exchange -------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise UpstreamDropped("the replica closed the connection while the request was sent")
        self.transport.write(data)
        await self._drain.wait()

    async def more(self, timeout: float) -> None:
        """Wait until more bytes arrived (or the connection ended); TimeoutError after ``timeout``.

        One timer per connection checks the deadline lazily (re-arming when it fires early),
        so a wait costs no timer operation."""
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        if self.closed:
            raise UpstreamDropped(f"the replica closed the connection: {self.error or 'end of stream'}")
        loop = self._arm(timeout)
        self._waiter = loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def expect(self, relay: Relay, timeout: float) -> None:
        """Hand what arrives from now on to ``relay`` (``expired`` after ``timeout`` seconds
        without an answer), instead of waking a waiting task."""
        self.relay = relay
        self._arm(timeout)

    def _arm(self, timeout: float) -> asyncio.AbstractEventLoop:
        loop = self._loop
        self._deadline = loop.time() + timeout
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._check)
        return loop

    def _check(self) -> None:
        self._timer = None
        waiter = self._waiter
        waiting = waiter is not None and not waiter.done()
        if not waiting and self.relay is None:
            return  # not waiting; the next wait starts a timer
        loop = asyncio.get_running_loop()
        if loop.time() < self._deadline:
            self._timer = loop.call_at(self._deadline, self._check)
        elif self.relay is not None:
            self.relay.expired()
        elif waiter is not None:
            waiter.set_exception(TimeoutError("the replica sent nothing in time"))

    def take(self, n: int) -> bytes:
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
