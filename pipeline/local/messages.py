"""HTTP requests and answers as the local router and the Lambda runtime see them.

The router's listeners (``pipeline.local.http.listener``) parse requests themselves and
build a ``Request`` per request: the method, the request target as sent, the decoded path,
the headers (a case-insensitive multidict), the peer and a ``Body`` that streams what
arrives. Whatever answers a request (the proxy, the edge, the Lambda bridge) returns an
``Answer``: a status, headers and a body in memory, or ``streamed`` when it already wrote
itself to the client through ``Request.stream``.

``RequestView`` is what reading a request needs (``build_event`` of the Lambda runtime
takes it): the router's ``Request`` and aiohttp's request both have it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, NamedTuple, Protocol

from multidict import CIMultiDict, MultiDict, MultiMapping
from yarl import URL

HIGH_WATER = 256 * 1024
"""Bytes of a request body buffered before reading from the client pauses."""


class Version(NamedTuple):
    major: int
    minor: int


class RequestView(Protocol):
    """The parts of an HTTP request that building a Lambda event reads."""

    @property
    def method(self) -> str: ...
    @property
    def headers(self) -> MultiMapping[str]: ...
    @property
    def query(self) -> MultiMapping[str]: ...
    @property
    def query_string(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def remote(self) -> str | None: ...
    @property
    def version(self) -> Any: ...  # major and minor


class Body:
    """A request body as it arrives; reading pauses the client above ``HIGH_WATER`` bytes."""

    __slots__ = ("_buffer", "_done", "_error", "_paused", "_transport", "_waiter")

    def __init__(self, transport: asyncio.Transport | None) -> None:
        self._transport = transport
        self._buffer = bytearray()
        self._done = False
        self._error: Exception | None = None
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    # --- fed by the listener --------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def finish(self) -> None:
        self._done = True
        self._wake()

    def fail(self, exc: Exception) -> None:
        if not self._done:
            self._error = exc
            self._wake()

    @property
    def complete(self) -> bool:
        return self._done and not self._buffer

    # --- read by the handler ----------------------------------------------------------------

    async def readany(self) -> bytes:
        """What has arrived (waiting for something); b"" at the end; ConnectionResetError when
        the client went away first."""
        while not self._buffer:
            if self._done:
                return b""
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = bytes(self._buffer)
        self._buffer.clear()
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return data

    async def read(self) -> bytes:
        """The whole body."""
        parts = []
        while chunk := await self.readany():
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Stream(Protocol):
    """An answer on its way to the client: its head is sent, ``write`` sends body bytes."""

    async def write(self, data: bytes) -> None: ...
    async def finish(self) -> None: ...


class Responder(Protocol):
    """The connection a request came on (implemented by the listener)."""

    def send_continue(self) -> None: ...
    def start(self, answer: Answer, length: int | None, version: Version) -> Stream: ...


class Request:
    """One request parsed by a listener. ``target`` is the request target as sent (path and
    query, still percent-encoded); ``path`` is its decoded path, what rules match."""

    __slots__ = ("_host", "_query", "_responder", "body", "headers", "keep_alive", "method", "path",
                 "query_string", "remote", "target", "transport", "version")

    def __init__(self, method: str, target: str, headers: CIMultiDict[str], version: Version,
                 remote: str | None, transport: asyncio.Transport | None, body: Body | None,
                 responder: Responder | None = None, keep_alive: bool = True) -> None:
        self.method = method
        self.target = target
        raw_path, _, self.query_string = target.partition("?")
        self.path = raw_path if "%" not in raw_path else URL.build(path=raw_path, encoded=True).path
        self.headers = headers
        self.version = version
        self.remote = remote
        self.transport = transport
        self.body = body  # None: the request has no body
        self.keep_alive = keep_alive
        self._responder = responder
        self._query: MultiDict[str] | None = None
        self._host: str | None = None

    @property
    def query(self) -> MultiDict[str]:
        if self._query is None:
            self._query = MultiDict(URL.build(query_string=self.query_string, encoded=True).query)
        return self._query

    @property
    def host(self) -> str:
        if self._host is None:
            self._host = self.headers.get("Host") or "127.0.0.1"
        return self._host

    @property
    def content_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        return int(raw) if raw is not None and raw.isdigit() else None

    def send_continue(self) -> None:
        """Answer ``Expect: 100-continue`` now (once; a no-op without a connection)."""
        if self._responder is not None:
            self._responder.send_continue()

    def stream(self, answer: Answer, length: int | None) -> Stream:
        """Send ``answer``'s head now (its body follows through the returned stream; ``length``
        None: its length is unknown); ``answer`` is marked ``streamed``."""
        if self._responder is None:
            raise ConnectionResetError("the request has no connection to answer on")
        answer.streamed = True
        return self._responder.start(answer, length, self.version)

    def with_headers(self, headers: CIMultiDict[str]) -> Request:
        """The same request (same body and connection) with other headers."""
        copy = Request(self.method, self.target, headers, self.version, self.remote, self.transport,
                       self.body, self._responder, self.keep_alive)
        copy._query = self._query
        return copy


class Answer:
    """A response: status, reason, headers and body; ``streamed`` once its head went out.

    A proxied answer may carry its header lines as text instead (``lines``: ``Name: value``
    lines, each ending with CRLF, as the replica sent them): they are written as they are,
    and parsed into ``headers`` only if something reads them."""

    __slots__ = ("_headers", "_lines", "announced", "body", "dated", "reason", "status", "streamed")

    def __init__(self, status: int, body: bytes = b"", headers: Any = None, reason: str | None = None,
                 content_type: str | None = None, *, lines: bytes | None = None, dated: bool = False) -> None:
        self.status = status
        self.reason = reason if reason is not None else _reason(status)
        self._lines = lines
        self._headers: CIMultiDict[str] | None = None
        if lines is None or headers is not None:
            self._headers = CIMultiDict(headers) if headers is not None else CIMultiDict()
            if content_type is not None:
                self._headers["Content-Type"] = content_type
        self.body = body
        self.dated = dated  # ``lines`` hold a Date header
        self.streamed = False
        self.announced: int | None = None  # the Content-Length of an answer to HEAD (no body sent)

    @property
    def proxied(self) -> bool:
        """Whether the headers are a replica's lines, untouched so far."""
        return self._headers is None

    @property
    def headers(self) -> CIMultiDict[str]:
        if self._headers is None:
            headers: CIMultiDict[str] = CIMultiDict()
            for line in (self._lines or b"").decode("utf-8", "surrogateescape").split("\r\n"):
                name, sep, value = line.partition(":")
                if sep:
                    headers.add(name.strip(), value.strip())
            self._headers, self._lines = headers, None
        return self._headers

    def rendered(self) -> tuple[bytes, bool]:
        """The header lines (each ending with CRLF), and whether they hold a Date."""
        if self._headers is None:
            return self._lines or b"", self.dated
        headers = self._headers
        text = "".join([f"{k}: {v}\r\n" for k, v in headers.items()])
        return text.encode("utf-8", "surrogateescape"), "Date" in headers


def json_answer(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Answer:
    """A JSON answer of ``data``."""
    return Answer(status, json.dumps(data).encode(), headers, content_type="application/json")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
