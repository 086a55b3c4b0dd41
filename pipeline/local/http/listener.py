"""The router's HTTP/1.1 server side: an asyncio protocol that parses with ``httptools``.

Every request through the local router pays for its server side, so it is kept to what a
proxy needs: ``httptools`` (the llhttp parser, in C) calls back with the request line,
headers and body pieces; ``Listener`` turns each head into a ``Request`` and runs the
handler as soon as the head is complete, while the body keeps arriving into the request's
``Body`` (streamed, the client paused above ``HIGH_WATER`` bytes). The answer goes out in
one write (head and body together) unless the handler streams it (``Request.stream``:
``Content-Length`` when known, else chunked; writes wait for the socket to drain).

Connections are kept alive (HTTP/1.1, or 1.0 with ``Connection: keep-alive``) unless the
client or the handler says otherwise, or the request's body was not read to its end.
Pipelined requests are answered in order, one at a time. A malformed request gets ``400``,
a request head above ``MAX_HEAD`` bytes ``431``, and the connection is closed. An
``Upgrade`` request is answered as a plain request, then the connection closes.

Limits that span connections (the cap, the header deadline) are the ``ConnectionGate``'s
(``pipeline.local.http.limits``), which wraps this protocol.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import cast

import httptools
from multidict import CIMultiDict

from pipeline.local.http.drain import Drain
from pipeline.local.http.wire import answer_head, encode_answer, request_target
from pipeline.local.messages import Answer, Body, Request, Version, json_answer

Handler = Callable[[Request], Awaitable[Answer]]
FastHandler = Callable[[Request, Callable[[Answer], None]], bool]
"""Takes a bodiless request without a task: answers it through the callback, now or later
(True), or declines (False, having done nothing) so that ``Handler`` answers it."""
MAX_HEAD = 64 * 1024
"""Bytes of request line and headers accepted per request (``431`` beyond)."""
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_V11, _V10 = Version(1, 1), Version(1, 0)
log = logging.getLogger("pipeline.local.router")


class Listener(asyncio.Protocol):
    """One client connection: parses requests, runs ``handler`` for each, writes the answers."""

    def __init__(self, handler: Handler, connections: set[Listener] | None = None,
                 fast: FastHandler | None = None) -> None:
        self._handler = handler
        self._fast = fast
        self._connections = connections  # the server's open connections (for ``shut``)
        self._parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._remote: str | None = None
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._head_size = 0
        self._parsing: Request | None = None  # the request whose body is being parsed
        self._waiting: deque[Request] = deque()  # pipelined requests, answered in order
        self._task: asyncio.Task[None] | bool | None = None  # the current request's handler (True: fast)
        self._input_done = False  # no more requests will be read (EOF, error, upgrade)
        self._lost = False
        self._drain = Drain()
        self._close_after = False  # a streamed answer of unknown length ends with the connection

    # --- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self._connections is not None:
            self._connections.add(self)
        peer = transport.get_extra_info("peername")
        self._remote = str(peer[0]) if peer else None

    def data_received(self, data: bytes) -> None:
        if self._input_done:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._input_done = True  # answered as a plain request, then closed
        except httptools.HttpParserError as exc:  # also what a callback raised, wrapped
            if self._head_size > MAX_HEAD:
                self._refuse(431, f"the request head is larger than {MAX_HEAD} bytes")
            else:
                self._refuse(400, f"malformed request: {exc}")

    def eof_received(self) -> bool:
        self._input_done = True
        if self._parsing is not None and self._parsing.body is not None:
            self._parsing.body.fail(ConnectionResetError("the client closed its side mid-body"))
        if self._task is None and self.transport is not None:
            self.transport.close()
        return True  # keep the socket open to send the answer being prepared

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._input_done = True
        if self._connections is not None:
            self._connections.discard(self)
        gone = ConnectionResetError("the client closed the connection")
        for request in (self._parsing, *self._waiting):
            if request is not None and request.body is not None:
                request.body.fail(gone)
        self._waiting.clear()
        self._drain.fail(gone)

    def pause_writing(self) -> None:
        self._drain.pause()

    def resume_writing(self) -> None:
        self._drain.resume()

    # --- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._grow(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow(len(name) + len(value) + 4)
        self._headers.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        parser = self._parser
        headers = CIMultiDict(self._headers)
        length = headers.get("Content-Length")
        has_body = "Transfer-Encoding" in headers or (length is not None and length != "0")
        request = Request(
            parser.get_method().decode("ascii"), request_target(self._url), headers,
            _V11 if parser.get_http_version() == "1.1" else _V10, self._remote, self.transport,
            Body(self.transport) if has_body else None, self, parser.should_keep_alive())
        self._parsing = request
        if self._task is None:
            self._run(request)
        else:
            self._waiting.append(request)

    def on_body(self, data: bytes) -> None:
        if self._parsing is not None and self._parsing.body is not None:
            self._parsing.body.feed(data)

    def on_message_complete(self) -> None:
        if self._parsing is not None and self._parsing.body is not None:
            self._parsing.body.finish()
        self._parsing = None

    # --- answering ---------------------------------------------------------------------------

    def _run(self, request: Request) -> None:
        if self._fast is not None and request.body is None:
            self._task = True
            try:
                if self._fast(request, lambda answer: self._complete(request, answer)):
                    return
            except Exception:
                log.exception("the router failed on %s %s", request.method, request.target[:200])
                self._complete(request, _failed())
                return
        self._task = asyncio.get_running_loop().create_task(self._serve(request))

    async def _serve(self, request: Request) -> None:
        try:
            answer = await self._handler(request)
        except Exception:  # a bug must cost one request, not the connection's others
            log.exception("the router failed on %s %s", request.method, request.target[:200])
            answer = _failed()
        self._complete(request, answer)

    def _complete(self, request: Request, answer: Answer) -> None:
        """Send ``answer`` (unless it went out streamed), then close or go on to the next request."""
        transport = self.transport
        if transport is None or self._lost or transport.is_closing():
            self._task = None
            return
        body = request.body
        keep = request.keep_alive and (body is None or body.complete) and not self._close_after
        if not answer.streamed:
            transport.write(encode_answer(answer, request, keep))
        self._task = None
        if not keep or (self._input_done and not self._waiting):
            transport.close()
        elif self._waiting:
            self._run(self._waiting.popleft())

    def shut(self) -> None:
        """Read no more requests: close now when idle, else after the answer in progress."""
        self._input_done = True
        self._waiting.clear()
        if self._task is None and self.transport is not None:
            self.transport.close()

    def send_continue(self) -> None:
        if self.transport is not None and not self._lost:
            self.transport.write(_CONTINUE)

    def start(self, answer: Answer, length: int | None, version: Version) -> _Stream:
        if self.transport is None or self._lost or self.transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        chunked = length is None and version == _V11
        framing = f"Content-Length: {length}" if length is not None else \
            "Transfer-Encoding: chunked" if chunked else "Connection: close"
        self._close_after = self._close_after or framing == "Connection: close"
        self.transport.write(answer_head(answer, framing))
        return _Stream(self, chunked)

    async def drain(self) -> None:
        if self._lost or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        await self._drain.wait()

    def _grow(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD:
            raise _HeadTooLarge

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` (unless a request is being answered) and close the connection."""
        self._input_done = True
        if self._parsing is not None and self._parsing.body is not None:
            self._parsing.body.fail(ConnectionResetError(message))
        transport = self.transport
        if transport is None:
            return
        if self._task is None:
            answer = json_answer({"error": message}, status, {"X-Pipeline-Router": "local"})
            transport.write(encode_answer(answer, None, False))
            transport.close()


class _HeadTooLarge(Exception):
    pass


def _failed() -> Answer:
    return json_answer({"error": "the local router failed on this request"}, 500,
                       {"X-Pipeline-Router": "local"})


class _Stream:
    """A streamed answer's body: chunk-coded when ``chunked``."""

    __slots__ = ("_chunked", "_listener")

    def __init__(self, listener: Listener, chunked: bool) -> None:
        self._listener = listener
        self._chunked = chunked

    async def write(self, data: bytes) -> None:
        listener = self._listener
        if not data:
            return
        await listener.drain()
        assert listener.transport is not None
        listener.transport.write(b"%x\r\n%b\r\n" % (len(data), data) if self._chunked else data)

    async def finish(self) -> None:
        listener = self._listener
        await listener.drain()
        if self._chunked and listener.transport is not None:
            listener.transport.write(b"0\r\n\r\n")


Wrap = Callable[[Callable[[], asyncio.Protocol]], Callable[[], asyncio.Protocol]]


async def serve(handler: Handler, host: str, port: int, wrap: Wrap | None = None,
                connections: set[Listener] | None = None,
                fast: FastHandler | None = None) -> asyncio.Server:
    """A server on ``host:port`` answering with ``handler``; port 0 picks a free one. ``wrap``
    wraps the protocol factory (e.g. ``ConnectionGate.wrap``); ``connections``, when given,
    holds the open connections (``Listener.shut`` them to stop)."""
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.Protocol:
        return Listener(handler, connections, fast)

    return await loop.create_server(wrap(factory) if wrap is not None else factory, host, port,
                                    backlog=1024, reuse_address=True)
