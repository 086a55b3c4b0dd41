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

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from pipeline.local.replicas.replica import Replica
from pipeline.local.replicas.supervisor import SlotKey, Supervisor

BUFFERED = 64 * 1024
"""Bodies up to this many bytes (with a known length) are read whole; larger ones stream."""
CLIENT_CLOSED = 499
"""Status counted when the client went away before its request was answered (not a 5xx)."""
HOP_BY_HOP = frozenset(
    h.lower() for h in ("Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
                        "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length")
)
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_DROPPED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError)
_UPSTREAM = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=60.0)  # 504 after a silent minute
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

    def __init__(self, http: aiohttp.ClientSession, request: web.Request, target: str,
                 tags: dict[str, str], body_idle_timeout: float) -> None:
        self._http = http
        self._request = request
        self._target = target
        self._tags = tags
        self._idle = body_idle_timeout
        self.outcome: int | None = None
        self._client_failure: ClientFailed | None = None

    async def proxy(self, key: SlotKey, supervisor: Supervisor) -> web.StreamResponse:
        request = self._request
        try:
            body = await self._small_body()
        except ClientFailed as exc:
            return self._client_error(exc)
        streamed = body is None and request.body_exists
        retry_dropped = request.method in _IDEMPOTENT and not streamed
        headers = forward_headers(request)
        if streamed and request.content_length is not None:
            headers["Content-Length"] = str(request.content_length)  # else chunked to the replica
        tried: frozenset[Replica] = frozenset()
        for attempt in range(2):
            replica = supervisor.pick(key, tried)
            if replica is None:
                if attempt:
                    break
                return error(503, f"{key} has no healthy replica")
            tried |= {replica}
            replica.inflight += 1
            try:
                return await self._send(replica, headers, self._stream() if streamed else body)
            except aiohttp.ClientConnectorError:
                continue  # refused: nothing was sent, any method may go elsewhere
            except (aiohttp.ClientError, TimeoutError, ClientFailed) as exc:
                failed = self._failure(exc, f"{key} replica {replica.index}", retry_dropped)
                if failed is not None:
                    return failed
            finally:
                replica.inflight -= 1
        return error(502, f"{key}: no replica accepted the request ({len(tried)} tried)")

    def _failure(self, exc: BaseException, who: str, retry_dropped: bool) -> web.Response | None:
        """The answer to give after ``exc``, or None to try another replica."""
        if isinstance(exc, ClientFailed):
            return self._client_error(exc)
        if self._client_failure is not None:  # the body stream failed on the client's side
            return self._client_error(self._client_failure)
        if isinstance(exc, _DROPPED):
            return None if retry_dropped else self._upstream_error(502, f"{who} dropped the connection", exc)
        if isinstance(exc, TimeoutError):
            return self._upstream_error(504, f"{who} did not answer in time", exc)
        return self._upstream_error(502, f"{who} failed", exc)

    async def _small_body(self) -> bytes | None:
        """The whole body when it is short and has a length (b"" for none); None to stream it."""
        request = self._request
        if not request.body_exists:
            return b""
        length = request.content_length
        if length is None or length > BUFFERED:
            return None
        try:
            async with asyncio.timeout(self._idle):
                return await request.read()
        except TimeoutError as exc:
            raise ClientFailed(408, f"the request body did not arrive within {self._idle:g}s") from exc
        except (ConnectionError, aiohttp.ClientPayloadError) as exc:
            raise ClientFailed(CLIENT_CLOSED, "the client went away while sending its body") from exc

    async def _stream(self) -> AsyncIterator[bytes]:
        """The request body as it arrives; records why the client side failed, if it does."""
        content = self._request.content
        try:
            while True:
                async with asyncio.timeout(self._idle):
                    chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except TimeoutError as exc:
            self._client_failure = ClientFailed(408, f"the request body was idle for {self._idle:g}s")
            raise self._client_failure from exc
        except (ConnectionError, aiohttp.ClientPayloadError) as exc:
            self._client_failure = ClientFailed(CLIENT_CLOSED, "the client went away while sending its body")
            raise self._client_failure from exc

    async def _send(self, replica: Replica, headers: CIMultiDict[str],
                    body: object) -> web.StreamResponse:
        request = self._request
        url = URL(f"{replica.url}{self._target}", encoded=True)
        async with self._http.request(request.method, url, headers=headers, data=body or None,
                                      timeout=_UPSTREAM, allow_redirects=False,
                                      auto_decompress=False) as upstream:
            out = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP)
            out.update(self._tags)
            length = upstream.content_length
            if request.method == "HEAD" or (length is not None and length <= BUFFERED):
                payload = await upstream.read()
                return web.Response(status=upstream.status, reason=upstream.reason, body=payload,
                                    headers=out)
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=out)
            if length is not None:
                response.content_length = length
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self._broken_answer(replica, exc)
            return response

    def _broken_answer(self, replica: Replica, exc: BaseException) -> None:
        """The answer broke after its head was sent: the client connection is cut."""
        if isinstance(exc, ConnectionError) and not isinstance(exc, aiohttp.ClientError):
            self.outcome = CLIENT_CLOSED  # the client stopped reading
        else:
            self.outcome = 502
            log.warning("replica %s broke its answer mid-body: %s", replica.index, type(exc).__name__)
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    def _client_error(self, exc: ClientFailed) -> web.Response:
        self.outcome = exc.status
        log.info("client request abandoned: %s", exc.message)
        return error(exc.status if exc.status != CLIENT_CLOSED else 400, exc.message)

    def _upstream_error(self, status: int, message: str, exc: BaseException) -> web.Response:
        log.warning("%s: %s", message, type(exc).__name__)
        return error(status, f"{message}: {type(exc).__name__} {exc}".rstrip())


def forward_headers(request: web.Request) -> CIMultiDict[str]:
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP)
    peer = request.remote or ""
    prior = headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    headers["X-Forwarded-Host"] = request.host
    headers["X-Forwarded-Proto"] = request.scheme
    return headers


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers={"X-Pipeline-Router": "local"})
