"""Lambda routes across the two loops: the router (data loop) calls the runtime (control loop).

A request on a ``kind: lambda`` route arrives on the data plane's loop, but the Lambda
runtime, its pools and workers live on the plane's control loop. ``cross_loop_invoker``
reads the body and builds the HTTP API event where the request is, runs the invocation on
the runtime's loop, and builds the response back on the request's loop: no request object
ever crosses loops. The body is capped at Lambda's 6 MB invocation payload (413 beyond).
"""

from __future__ import annotations

import asyncio

from pipeline.core.errors import NotFoundError
from pipeline.local.http.dataplane import run_on
from pipeline.local.http.router import LambdaInvoker
from pipeline.local.lambda_.http_events import build_event, to_response, unavailable
from pipeline.local.lambda_.runtime import LambdaRuntime
from pipeline.local.messages import Answer, Request, json_answer

MAX_PAYLOAD = 6 * 1024 * 1024
"""Lambda's synchronous invocation payload limit (request and response), 6 MB."""


def cross_loop_invoker(runtime: LambdaRuntime, runtime_loop: asyncio.AbstractEventLoop,
                       body_timeout: float) -> LambdaInvoker:
    """An invoker for routers on any loop that runs ``runtime`` on ``runtime_loop``."""

    async def invoke(function: str, request: Request, path_rule: str) -> Answer:
        if (request.content_length or 0) > MAX_PAYLOAD:
            return _too_large()
        try:
            body = await _read_capped(request, body_timeout)
        except TimeoutError:
            return json_answer({"message": "Request Timeout"}, 408)
        if body is None:
            return _too_large()
        event = build_event(request, body, raw_path=request.path, path_rule=path_rule)
        try:
            result = await run_on(runtime_loop, runtime.invoke(function, "live", event))
        except NotFoundError as exc:
            return unavailable(exc.message)
        return to_response(result)

    return invoke


async def _read_capped(request: Request, idle: float) -> bytes | None:
    """The whole body, or None past ``MAX_PAYLOAD``; TimeoutError when idle for ``idle`` s."""
    if request.body is None:
        return b""
    parts: list[bytes] = []
    size = 0
    while True:
        async with asyncio.timeout(idle):
            chunk = await request.body.readany()
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > MAX_PAYLOAD:
            return None
        parts.append(chunk)


def _too_large() -> Answer:
    return json_answer({"message": "Request Entity Too Large"}, 413)
