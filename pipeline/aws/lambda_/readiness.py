"""Checks a new version passes before it gets traffic: smoke invocations and warm-up.

Both invoke the *version* directly (qualifier = version number), never an alias, so
nothing users call is touched. Smoke events are the service's ``lambda.smoke_events``,
the same ones the test stage sends over HTTP: an API Gateway event (HTTP API v2 with
``rawPath``/``requestContext``, or REST v1 with ``httpMethod``) is sent as is; a request
spec ``{path, body, method, headers, expect}`` becomes the HTTP API v2 event API Gateway
would deliver for it; any other mapping is the raw event (a non-HTTP function).

An invocation fails when Lambda reports a function error (``X-Amz-Function-Error``), when
the payload is Lambda's error shape (``{"errorMessage": ..., "errorType": ...}``), or when
it is an HTTP response whose ``statusCode`` is not 2xx (or not in the spec's ``expect``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pipeline.aws.lambda_.api import InvokeResult, LambdaApi
from pipeline.core.errors import PipelineError
from pipeline.core.keep_warm import KEEP_WARM_KEY
from pipeline.loadtest.smoke import SmokeRequest, route_prefix

__all__ = [
    "Invocation",
    "SmokeResult",
    "WarmResult",
    "invocation",
    "invocation_failure",
    "smoke_test",
    "warm_up",
]

# the keep-warm marker, and the older "source" key that existing handlers may test for
WARM_EVENT: dict[str, Any] = {"source": "pipeline.warm-up", KEEP_WARM_KEY: True}


@dataclass(frozen=True, slots=True)
class Invocation:
    """The payload a smoke event is invoked with, and the HTTP statuses that pass (any 2xx if empty)."""

    event: object
    expect: tuple[int, ...] = ()


def invocation(event: object, route: str = "/*") -> Invocation:
    """How ``event`` (one of ``lambda.smoke_events``) is sent to a version directly."""
    api_gateway_event = ("rawPath", "requestContext", "httpMethod")
    if not isinstance(event, Mapping) or any(key in event for key in api_gateway_event):
        return Invocation(event)
    if "path" not in event:
        return Invocation(dict(event))
    request = SmokeRequest.from_event(event, route_prefix(route) or "/")
    path, _, query = request.path.partition("?")
    try:
        body, encoded = request.body.decode(), False
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(request.body).decode(), True
    headers = {"user-agent": "pipeline-smoke", **dict(request.headers)}
    v2 = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "http": {"method": request.method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "pipeline-smoke"},
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": encoded,
    }
    return Invocation(v2, request.expect)


@dataclass(frozen=True, slots=True)
class SmokeResult:
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class WarmResult:
    """How many of ``requested`` concurrent warm-up invocations succeeded."""

    requested: int
    succeeded: int
    errors: tuple[str, ...] = ()


def invocation_failure(result: InvokeResult, expect: Sequence[int] = ()) -> str | None:
    """Why ``result`` is a failure, or None when it succeeded (``expect``: passing statuses)."""
    payload = _json(result.payload)
    if result.function_error or (isinstance(payload, dict) and "errorMessage" in payload):
        kind = result.function_error or "error"
        if isinstance(payload, dict):
            kind = str(payload.get("errorType") or kind)
            return f"{kind}: {str(payload.get('errorMessage', ''))[:200]}"
        return f"{kind}: {result.payload[:200].decode(errors='replace')}"
    if not 200 <= result.status < 300:
        return f"invoke answered HTTP {result.status}"
    status = payload.get("statusCode") if isinstance(payload, dict) else None
    if isinstance(payload, dict) and isinstance(status, int):
        passed = status in expect if expect else 200 <= status < 300
        if not passed:
            body = str(payload.get("body", ""))[:200]
            return f"HTTP {status}" + (f": {body}" if body else "")
    return None


def _json(payload: bytes) -> object:
    try:
        return json.loads(payload) if payload else None
    except ValueError:
        return None


def smoke_test(api: LambdaApi, version: str, events: Sequence[object], route: str = "/*") -> SmokeResult:
    """Invoke ``version`` once per event, in order; stop at the first failure."""
    for number, event in enumerate(events, start=1):
        call = invocation(event, route)
        failure = invocation_failure(api.invoke(version, call.event), call.expect)
        if failure is not None:
            why = f"smoke event {number}/{len(events)} failed on version {version}: {failure}"
            return SmokeResult(False, why)
    if not events:
        return SmokeResult(True, "no smoke events configured")
    return SmokeResult(True, f"{len(events)} smoke event(s) passed")


def warm_up(api: LambdaApi, version: str, count: int, event: object = WARM_EVENT) -> WarmResult:
    """``count`` concurrent invocations of ``version``, so ``count`` environments start warm.

    Failed warm-ups are reported, not raised: warming is best effort, smoke tests judge.
    """
    if count <= 0:
        return WarmResult(0, 0)

    def one(_: int) -> str | None:
        try:
            return invocation_failure(api.invoke(version, event))
        except PipelineError as exc:
            return exc.message

    with ThreadPoolExecutor(max_workers=min(count, 32), thread_name_prefix="lambda-warm") as pool:
        failures = [f for f in pool.map(one, range(count)) if f is not None]
    return WarmResult(count, count - len(failures), tuple(dict.fromkeys(failures)))
