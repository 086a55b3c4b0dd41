"""The router's fast path: a bodiless GET or HEAD proxied without a task per request.

``FastRelay`` writes the request head to a kept-alive replica connection at once and reads
the answer in the connection's ``data_received``; ``spawn`` runs the general path
(``Exchange``) in a task when the fast path hands a request over, and calls back with the
answer either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pipeline.local.http.proxy import BUFFERED, Exchange, error
from pipeline.local.http.response_head import seen_head
from pipeline.local.http.upstream import UpstreamCall, UpstreamDropped
from pipeline.local.http.upstream_conn import Connection
from pipeline.local.messages import Answer
from pipeline.local.replicas.replica import Replica
from pipeline.local.replicas.supervisor import SlotKey, Supervisor

log = logging.getLogger("pipeline.local.router")


class FastRelay:
    """The router's fast path for a bodiless GET or HEAD on a kept-alive replica connection:
    the head is written at once and the answer is read in ``Connection.data_received``, with no
    task per request (a task and a future per request cost as much as the rest of a small
    request's proxying). Only the plain case is finished here: a complete head with a short
    ``Content-Length`` body. Anything else (an interim or chunked answer, a long body, a
    malformed head, a dropped connection, no answer in time) continues in a task through
    ``Exchange.resume``, which answers it as the general path would."""

    __slots__ = ("_conn", "_done", "_exchange", "_key", "_method", "_replica", "_supervisor")

    def __init__(self, exchange: Exchange, key: SlotKey, supervisor: Supervisor, replica: Replica,
                 conn: Connection, done: Callable[[Answer], None], method: str) -> None:
        self._exchange = exchange
        self._key = key
        self._supervisor = supervisor
        self._replica = replica
        self._conn = conn
        self._done = done
        self._method = method

    def send(self, head: bytes, timeout: float) -> None:
        conn = self._conn
        assert conn.transport is not None
        self._replica.inflight += 1
        conn.expect(self, timeout)
        conn.transport.write(head)

    def data(self) -> None:
        conn = self._conn
        buffer = conn.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        try:
            head = seen_head(bytes(buffer[:end + 4]))
        except (UpstreamDropped, ValueError):
            self._resume(None)  # the general path reads it again and says what is wrong
            return
        length = head.length
        if self._method == "HEAD" or head.status in (204, 304):
            length = 0
        if head.status < 200 or head.chunked or length is None or length > BUFFERED:
            self._resume(None)
            return
        if len(buffer) < end + 4 + length:
            return  # the rest of the body is on its way
        conn.relay = None
        del buffer[:end + 4]
        body = conn.take(length)
        pool = conn.pool
        if head.keep_alive and not buffer:
            pool.release(conn)
        else:
            pool.discard(conn)
        self._replica.inflight -= 1
        self._done(self._exchange.answered(head, body))

    def lost(self, exc: Exception | None) -> None:
        self._resume(UpstreamDropped(f"the replica closed the connection: {exc or 'end of stream'}"))

    def expired(self) -> None:
        self._conn.pool.discard(self._conn)
        self._resume(TimeoutError("the replica sent nothing in time"))

    def _resume(self, failure: BaseException | None) -> None:
        conn = self._conn
        conn.relay = None
        self._replica.inflight -= 1
        call = UpstreamCall(conn) if failure is None else None
        spawn(self._exchange.resume(self._key, self._supervisor, self._replica, failure, call), self._done)


_tasks: set[asyncio.Task[None]] = set()


def spawn(answering: Awaitable[Answer], done: Callable[[Answer], None]) -> None:
    """Run ``answering`` in a task and call ``done`` with its answer (a 500 if it fails)."""

    async def run() -> None:
        try:
            answer = await answering
        except Exception:  # a bug must cost one request
            log.exception("the router failed on a request")
            answer = error(500, "the local router failed on this request")
        done(answer)

    task = asyncio.get_running_loop().create_task(run())
    _tasks.add(task)  # the loop keeps only weak references to tasks
    task.add_done_callback(_tasks.discard)
