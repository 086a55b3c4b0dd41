"""One proxied request: a client request sent to a replica of a slot, and the answer back.

Bodies are never held whole unless small: a request body of at most ``BUFFERED`` bytes with
a ``Content-Length`` is read at once (it can then be retried on another replica); a larger
or chunked one is streamed to the replica as it arrives, and the replica's answer is
streamed back unless it is small. The memory a request takes is therefore bounded by the
buffer sizes, not by the body sizes. A body that stays idle for ``body_idle_timeout``
seconds is abandoned with ``408``; a client that goes away mid-body ends the exchange
quietly (counted with status 499, not an error of the slot).

Retries (at most one other replica of the same slot): after a refused connection (nothing
was sent) for any request; after a dropped connection or a broken answer only for an
idempotent method whose body was not streamed (a streamed body cannot be sent twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from pipeline.local.http.response_head import Head
from pipeline.local.http.upstream import UpstreamCall, UpstreamDropped, UpstreamPool, UpstreamRefused
from pipeline.local.messages import Answer, Request, json_answer
from pipeline.local.replicas.replica import Replica
from pipeline.local.replicas.supervisor import SlotKey, Supervisor

BUFFERED = 64 * 1024
"""Bodies up to this many bytes (with a known length) are read whole; larger ones stream."""
CLIENT_CLOSED = 499
"""Status counted when the client went away before its request was answered (not a 5xx)."""
HOP_BY_HOP = frozenset(
    h.lower() for h in ("Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
                        "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Expect")
)
_REPLACED = HOP_BY_HOP | {"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"}
_TRACE_CONTEXT = frozenset({"traceparent", "tracestate"})
_REPLACED_TRACED = _REPLACED | _TRACE_CONTEXT  # what the router's span replaces (every traced request)
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
log = logging.getLogger("pipeline.local.router")


class ClientFailed(Exception):
    """The client side of the exchange failed (went away, or its body went idle)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Exchange:
    """Proxies ``request`` to ``target`` on a replica; ``outcome`` overrides the status counted
    when the answer could not be completed (499 client gone, 408 idle body, 502 broken)."""

    def __init__(self, pool: UpstreamPool, request: Request, target: str,
                 tags: dict[str, str], body_idle_timeout: float,
                 forward: dict[str, str] | None = None, tag_lines: bytes | None = None) -> None:
        self._pool = pool
        self._tag_bytes = tag_lines  # ``tags`` as header lines, when the caller keeps them
        self._forward = forward  # headers sent in place of the client's (the trace context)
        self._request = request
        self._target = target
        self._tags = tags
        self._idle = body_idle_timeout
        self.outcome: int | None = None

    async def proxy(self, key: SlotKey, supervisor: Supervisor, tried: frozenset[Replica] = frozenset(),
                    first: Replica | None = None) -> Answer:
        """Send the request to a replica of ``key`` (``first`` if given, else the next one not in
        ``tried``) and answer with its answer; one other replica on a failure that allows it."""
        request = self._request
        try:
            body = await self._small_body()
        except ClientFailed as exc:
            return self._client_error(exc)
        streamed = body is None
        retry_dropped = request.method in _IDEMPOTENT and not streamed
        head = _request_head(request, self._target, body, self._forward)
        for attempt in range(2):
            replica = first if first is not None and not attempt else supervisor.pick(key, tried)
            if replica is None:
                if attempt:
                    break
                return error(503, f"{key} has no healthy replica")
            tried |= {replica}
            replica.inflight += 1
            try:
                return await self._send(replica, head, self._stream() if body is None else body)
            except UpstreamRefused:
                continue  # nothing was sent, any method may go elsewhere
            except (UpstreamDropped, TimeoutError, ValueError, ClientFailed) as exc:
                failed = self._failure(exc, f"{key} replica {replica.index}", retry_dropped)
                if failed is not None:
                    return failed
            finally:
                replica.inflight -= 1
        return error(502, f"{key}: no replica accepted the request ({len(tried)} tried)")

    def head(self) -> bytes:
        """The request head for a request without a body."""
        return _request_head(self._request, self._target, b"", self._forward)

    async def resume(self, key: SlotKey, supervisor: Supervisor, replica: Replica,
                     failure: BaseException | None, call: UpstreamCall | None) -> Answer:
        """Finish a bodiless idempotent request whose head ``FastRelay`` sent to ``replica``: read
        the answer off ``call``, or act on ``failure`` (retry elsewhere, or answer 502/504)."""
        if failure is None and call is not None:
            replica.inflight += 1
            try:
                return await self._answer(replica, call)
            except (UpstreamDropped, TimeoutError, ValueError) as exc:
                failure = exc
            finally:
                replica.inflight -= 1
        who = f"{key} replica {replica.index}"
        failed = self._failure(failure or UpstreamDropped("no answer"), who, True)
        if failed is not None:
            return failed
        return await self.proxy(key, supervisor, frozenset({replica}))

    def answered(self, head: Head, body: bytes) -> Answer:
        """The answer of a replica that sent ``head`` and ``body`` (read whole)."""
        answer = Answer(head.status, body, reason=head.reason, lines=head.lines + self._tag_lines(),
                        dated=head.dated)
        if self._request.method == "HEAD":
            answer.announced = head.announced
        return answer

    def _failure(self, exc: BaseException, who: str, retry_dropped: bool) -> Answer | None:
        """The answer to give after ``exc``, or None to try another replica."""
        if isinstance(exc, ClientFailed):
            return self._client_error(exc)
        if isinstance(exc, UpstreamDropped):
            return None if retry_dropped else self._upstream_error(502, f"{who} dropped the connection", exc)
        if isinstance(exc, TimeoutError):
            return self._upstream_error(504, f"{who} did not answer in time", exc)
        return self._upstream_error(502, f"{who} sent a malformed answer", exc)

    async def _small_body(self) -> bytes | None:
        """The whole body when it is short and has a length (b"" for none); None to stream it."""
        request = self._request
        if request.body is None:
            return b""
        length = request.content_length
        self._continue()
        if length is None or length > BUFFERED:
            return None
        try:
            async with asyncio.timeout(self._idle):
                return await request.body.read()
        except TimeoutError as exc:
            raise ClientFailed(408, f"the request body did not arrive within {self._idle:g}s") from exc
        except ConnectionError as exc:
            raise ClientFailed(CLIENT_CLOSED, "the client went away while sending its body") from exc

    def _continue(self) -> None:
        """Answer ``Expect: 100-continue`` (the replica never sees it)."""
        if self._request.headers.get("Expect", "").lower() == "100-continue":
            self._request.send_continue()

    async def _stream(self) -> AsyncIterator[bytes]:
        """The request body as it arrives; ClientFailed when the client side fails."""
        body = self._request.body
        if body is None:
            return
        try:
            while True:
                async with asyncio.timeout(self._idle):
                    chunk = await body.readany()
                if not chunk:
                    return
                yield chunk
        except TimeoutError as exc:
            raise ClientFailed(408, f"the request body was idle for {self._idle:g}s") from exc
        except ConnectionError as exc:
            raise ClientFailed(CLIENT_CLOSED, "the client went away while sending its body") from exc

    async def _send(self, replica: Replica, head: bytes,
                    body: bytes | AsyncIterator[bytes]) -> Answer:
        request = self._request
        call = await self._pool.open(replica.port or 0)
        try:
            chunked = not isinstance(body, bytes) and request.content_length is None
            await call.send(head, body, chunked)
        except BaseException:
            call.finish()
            raise
        return await self._answer(replica, call)

    async def _answer(self, replica: Replica, call: UpstreamCall) -> Answer:
        """Read the answer off ``call`` (then give the connection back or close it)."""
        request = self._request
        try:
            answer = await call.response(request.method)
            if answer.length is not None and answer.length <= BUFFERED:
                return self.answered(answer, await call.read_all())
            response = Answer(answer.status, reason=answer.reason, lines=answer.lines + self._tag_lines(),
                              dated=answer.dated)
            stream = request.stream(response, answer.length)
            try:
                async for chunk in call.body():
                    await stream.write(chunk)
                await stream.finish()
            except (ConnectionError, TimeoutError, ValueError) as exc:
                self._broken_answer(replica, exc)
            return response
        finally:
            call.finish()

    def _tag_lines(self) -> bytes:
        if self._tag_bytes is None:
            self._tag_bytes = tag_lines(self._tags)
        return self._tag_bytes

    def _broken_answer(self, replica: Replica, exc: BaseException) -> None:
        """The answer broke after its head was sent: the client connection is cut."""
        if isinstance(exc, ConnectionError) and not isinstance(exc, UpstreamDropped):
            self.outcome = CLIENT_CLOSED  # the client stopped reading
        else:
            self.outcome = 502
            log.warning("replica %s broke its answer mid-body: %s", replica.index, type(exc).__name__)
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    def _client_error(self, exc: ClientFailed) -> Answer:
        self.outcome = exc.status
        log.info("client request abandoned: %s", exc.message)
        return error(exc.status if exc.status != CLIENT_CLOSED else 400, exc.message)

    def _upstream_error(self, status: int, message: str, exc: BaseException) -> Answer:
        log.warning("%s: %s", message, type(exc).__name__)
        return error(status, f"{message}: {type(exc).__name__} {exc}".rstrip())


def _request_head(request: Request, target: str, body: bytes | None,
                  forward: dict[str, str] | None = None) -> bytes:
    """The request line and headers sent to the replica (framing for ``body``: bytes, or
    None when it streams: its Content-Length if known, else chunked); ``forward`` replaces
    the client's headers of the same names."""
    replaced = _REPLACED
    if forward:  # the router's trace context, usually: a set made once
        replaced = _REPLACED_TRACED if forward.keys() <= _TRACE_CONTEXT else \
            _REPLACED | {k.lower() for k in forward}
    parts = [f"{request.method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"]
    parts += [f"{k}: {v}\r\n" for k, v in request.headers.items() if k.lower() not in replaced]
    if forward:
        parts += [f"{k}: {v}\r\n" for k, v in forward.items()]
    peer = request.remote or ""
    prior = request.headers.get("X-Forwarded-For")
    parts.append(f"X-Forwarded-For: {f'{prior}, {peer}' if prior else peer}\r\n"
                 f"X-Forwarded-Host: {request.host}\r\nX-Forwarded-Proto: http\r\n")
    if body is None:
        length = request.content_length
        framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
        parts.append(framing + "\r\n")
    elif body or request.body is not None:
        parts.append(f"Content-Length: {len(body)}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8", "surrogateescape")  # the bytes the listener decoded


def tag_lines(tags: dict[str, str]) -> bytes:
    """``tags`` as header lines."""
    return "".join([f"{k}: {v}\r\n" for k, v in tags.items()]).encode("utf-8", "surrogateescape")


def error(status: int, message: str) -> Answer:
    return json_answer({"error": message}, status, {"X-Pipeline-Router": "local"})
