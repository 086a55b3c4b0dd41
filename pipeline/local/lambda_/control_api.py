"""The local Lambda runtime's JSON control API, mounted by the local plane at ``/lambda/``.

Routes (relative to the mount point; bodies and answers are JSON)::

    GET  functions/{fn}                               describe: versions, aliases, concurrency
    POST functions/{fn}/versions                      {"package" (zip, base64), "handler", "memory",
                                                       "timeout", "environment"?} -> {"version", "sha256"}
    GET  functions/{fn}/versions/{v}                  one version (sha256, handler, ...)
    GET  functions/{fn}/aliases/{alias}               {"weights", "description"}
    PUT  functions/{fn}/aliases/{alias}               {"weights": {"1": 0.9, "2": 0.1}, "description"?}
    PUT  functions/{fn}/concurrency                   {"reserved": n | null}
    GET  functions/{fn}/versions/{v}/provisioned      {"requested", "ready", "status", "reason"}
    PUT  functions/{fn}/versions/{v}/provisioned      {"concurrency": n}
    GET  functions/{fn}/versions/{v}/metrics?since=&until=   (epoch seconds; default: the last 60 s)
    POST functions/{fn}/invocations?qualifier=live    body: the event -> InvokeResult (its status
                                                      is the HTTP status)
    POST functions/{fn}/warm                          {"qualifier", "count"} -> {"reports": [...]}: count
                                                      concurrent keep-warm pings per version served
    GET  functions/{fn}/keep-warm                     {"every", "concurrency", "pings", "rounds", ...}
    PUT  functions/{fn}/keep-warm                     {"every": seconds (0 removes), "concurrency"}
    *    invoke/{fn}/{qualifier}[/path...]            an HTTP request to that alias or version, as through
                                                      API Gateway (the slot's test route)

Errors answer ``{"error": {"type", "message", "hint"}}`` with 400 (UsageError), 404
(NotFoundError), 409 (StateConflict) or 500 (any other PipelineError).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from pipeline.core.errors import NotFoundError, PipelineError, StateConflict, UsageError
from pipeline.local.lambda_.warmup import warm

if TYPE_CHECKING:
    from pipeline.local.lambda_.runtime import LambdaRuntime

RUNTIME: web.AppKey[LambdaRuntime] = web.AppKey("lambda_runtime")
MAX_REQUEST = 72 * 1024 * 1024
"""Bytes of one request: a 50 MB package (AWS's direct-upload limit), base64 in JSON. The
application this API is mounted on must allow it (``client_max_size``)."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_STATUS = {UsageError: 400, NotFoundError: 404, StateConflict: 409}


def lambda_app(runtime: LambdaRuntime) -> web.Application:
    """The control API of ``runtime`` as an aiohttp sub-application (mount it at ``/lambda/``)."""
    app = web.Application(middlewares=[_errors])
    app[RUNTIME] = runtime
    r = app.router
    r.add_get("/functions/{fn}", _describe)
    r.add_post("/functions/{fn}/versions", _publish)
    r.add_get("/functions/{fn}/versions/{v}", _version)
    r.add_get("/functions/{fn}/aliases/{alias}", _get_alias)
    r.add_put("/functions/{fn}/aliases/{alias}", _set_alias)
    r.add_put("/functions/{fn}/concurrency", _set_reserved)
    r.add_get("/functions/{fn}/versions/{v}/provisioned", _get_provisioned)
    r.add_put("/functions/{fn}/versions/{v}/provisioned", _set_provisioned)
    r.add_get("/functions/{fn}/versions/{v}/metrics", _metrics)
    r.add_post("/functions/{fn}/invocations", _invoke)
    r.add_post("/functions/{fn}/warm", _warm)
    r.add_get("/functions/{fn}/keep-warm", _get_keep_warm)
    r.add_put("/functions/{fn}/keep-warm", _set_keep_warm)
    r.add_route("*", r"/invoke/{fn}/{qualifier}{tail:(/.*)?}", _invoke_http)
    return app


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PipelineError as exc:
        status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 500)
        error = {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint}
        return web.json_response({"error": error}, status=status)


def _rt(request: web.Request) -> LambdaRuntime:
    return request.app[RUNTIME]


async def _describe(request: web.Request) -> web.Response:
    return web.json_response(_rt(request).describe(request.match_info["fn"]))


async def _publish(request: web.Request) -> web.Response:
    body = await _json(request)
    fn, runtime = request.match_info["fn"], _rt(request)
    if "zip_path" in body:
        raise UsageError(
            "the runtime does not read packages from paths named by a request (zip_path)",
            hint="send the zip itself, base64-encoded, as \"package\"; the runtime keeps it in its own store",
        )
    environment = _field(body, "environment", dict, {})
    try:
        package = base64.b64decode(_field(body, "package", str), validate=True)
    except binascii.Error as exc:
        raise UsageError(f"'package' is not base64: {exc}", hint="send the zip base64-encoded") from exc
    number = runtime.publish_package(
        fn,
        package,
        _field(body, "handler", str),
        memory=_field(body, "memory", int, 128),
        timeout=float(_field(body, "timeout", (int, float), 3.0)),
        environment={str(k): str(v) for k, v in environment.items()},
    )
    return web.json_response(runtime.version(fn, number).to_dict())


async def _version(request: web.Request) -> web.Response:
    spec = _rt(request).version(request.match_info["fn"], request.match_info["v"])
    return web.json_response(spec.to_dict())


async def _get_alias(request: web.Request) -> web.Response:
    fn, alias, runtime = request.match_info["fn"], request.match_info["alias"], _rt(request)
    weights = runtime.get_alias(fn, alias)
    return web.json_response({"weights": weights, "description": runtime.alias_description(fn, alias)})


async def _set_alias(request: web.Request) -> web.Response:
    body = await _json(request)
    weights = _field(body, "weights", dict)
    description = _field(body, "description", str, "")
    fn, alias = request.match_info["fn"], request.match_info["alias"]
    _rt(request).set_alias(fn, alias, {str(k): v for k, v in weights.items()}, description)
    return await _get_alias(request)


async def _set_reserved(request: web.Request) -> web.Response:
    body = await _json(request)
    reserved = body.get("reserved")
    if reserved is not None and (isinstance(reserved, bool) or not isinstance(reserved, int)):
        raise UsageError(f"invalid reserved concurrency {reserved!r}: must be a whole number or null")
    fn = request.match_info["fn"]
    _rt(request).set_reserved_concurrency(fn, reserved)
    return web.json_response({"reserved": _rt(request).reserved_concurrency(fn)})


async def _get_provisioned(request: web.Request) -> web.Response:
    return web.json_response(_rt(request).provisioned(request.match_info["fn"], request.match_info["v"]))


async def _set_provisioned(request: web.Request) -> web.Response:
    body = await _json(request)
    n = _field(body, "concurrency", int)
    _rt(request).set_provisioned_concurrency(request.match_info["fn"], request.match_info["v"], n)
    return await _get_provisioned(request)


async def _metrics(request: web.Request) -> web.Response:
    until = _query_float(request, "until", time.time())
    since = _query_float(request, "since", until - 60.0)
    data = _rt(request).metrics(request.match_info["fn"], request.match_info["v"], since, until)
    return web.json_response(data)


async def _invoke(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        event = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise UsageError(f"the event is not JSON: {exc}", hint="send the event as a JSON body") from exc
    qualifier = request.query.get("qualifier", "live")
    result = await _rt(request).invoke(request.match_info["fn"], qualifier, event)
    return web.json_response(result.to_dict(), status=result.status)


async def _warm(request: web.Request) -> web.Response:
    body = await _json(request)
    fn, count = request.match_info["fn"], _field(body, "count", int, 1)
    reports = await warm(_rt(request), fn, _field(body, "qualifier", str, "live"), count)
    return web.json_response({"reports": [r.to_dict() for r in reports]})


async def _get_keep_warm(request: web.Request) -> web.Response:
    return web.json_response(_rt(request).keep_warm.status(request.match_info["fn"]))


async def _set_keep_warm(request: web.Request) -> web.Response:
    body = await _json(request)
    every = float(_field(body, "every", (int, float)))
    status = _rt(request).keep_warm.set(request.match_info["fn"], every, _field(body, "concurrency", int, 1))
    return web.json_response(status)


async def _invoke_http(request: web.Request) -> web.Response:
    info = request.match_info
    tail = info.get("tail") or "/"
    return await _rt(request).invoke_http(info["fn"], request, "", qualifier=info["qualifier"], raw_path=tail)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise UsageError(f"the request body is not JSON: {exc}", hint="send a JSON object") from exc
    if not isinstance(body, dict):
        raise UsageError("the request body must be a JSON object", hint="send a JSON object")
    return body


_MISSING: Any = object()


def _field(body: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
    value = body.get(key, default)
    if value is _MISSING:
        raise UsageError(f"the request has no {key!r}", hint=f"add {key!r} to the JSON body")
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise UsageError(f"{key!r} has the wrong type: {value!r}", hint=f"send {key!r} as {names}")
    return value


def _query_float(request: web.Request, key: str, default: float) -> float:
    raw = request.query.get(key)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise UsageError(f"query parameter {key}={raw!r} is not a number", hint="use epoch seconds") from exc
