"""The plane's JSON control API (aiohttp), served on 127.0.0.1 at the port in ``plane.json``.

::

    GET    /v1/status                                      the whole plane
    POST   /v1/shutdown                                    stop everything, then exit
    POST   /v1/spans/store                                 store the router spans held back now
    PUT    /v1/envs/{env}                       {"port"}   serve env on port and port+1
    PUT    /v1/envs/{env}/services/{svc}        RouteSpec  path rule ("pattern", "priority", "kind")
    PUT    /v1/envs/{env}/services/{svc}/slots/{slot}      {"digest", ...}; answers at once (202)
                                                    (see ``pipeline.local.plane.releases``)
    GET    /v1/envs/{env}/services/{svc}/slots/{slot}?digest=sha256:...   health for that release
    DELETE /v1/envs/{env}/services/{svc}/slots/{slot}      drain and stop; answers when stopped
    PUT    /v1/envs/{env}/services/{svc}/weights {"blue", "green"}
    GET    /v1/envs/{env}/services/{svc}/weights           {"weights": {...} | null}
    GET    /v1/envs/{env}/services/{svc}/metrics?slot=&since=&until=   counters of a window
    GET    /v1/envs/{env}/services/{svc}/endpoint?slot=    base URL of the test route to slot
    *      /v1/envs/{env}/services/{svc}/edge, .../keys    api rules and keys (``edge_api``)
    *      /lambda/...                                     the Lambda runtime's API, when loaded

Every request needs the plane's token and a loopback ``Host`` (``pipeline.local.plane.access``).
Every PUT and DELETE is idempotent. Errors answer ``{"error": ..., "hint": ...}`` with a
4xx status; the adapters turn them into ``pipeline.core.errors`` classes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from pipeline.core.model import Slot, Weights
from pipeline.local.http import tracing as router_tracing
from pipeline.local.http.rules import parse_slot
from pipeline.local.lambda_.control_api import MAX_REQUEST
from pipeline.local.plane.access import guard
from pipeline.local.plane.edge_api import add_edge_routes
from pipeline.local.plane.environments import Plane, PlaneRequestError
from pipeline.local.plane.releases import ReleaseResolver
from pipeline.local.specs import RouteSpec

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PLANE_KEY = web.AppKey("plane", Plane)
SHUTDOWN_KEY = web.AppKey("shutdown", asyncio.Event)
RELEASES_KEY = web.AppKey("releases", ReleaseResolver)
_MAX_BODY = MAX_REQUEST  # the Lambda API's: a 50 MB package (AWS's direct-upload limit) in base64 JSON


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PlaneRequestError as exc:
        return web.json_response({"error": exc.message, "hint": exc.hint}, status=exc.status)
    except (KeyError, TypeError, ValueError) as exc:
        message = f"bad request to {request.method} {request.path}: {type(exc).__name__}: {exc}"
        return web.json_response({"error": message, "hint": "check the request body"}, status=400)


def control_app(plane: Plane, shutdown: asyncio.Event, token: str) -> web.Application:
    """The control API of ``plane``, for holders of ``token``; ``POST /v1/shutdown`` sets ``shutdown``.

    Its middleware also guards sub-applications mounted on it (the Lambda runtime's API).
    """
    if not token:
        raise ValueError("the control API needs a token")
    app = web.Application(middlewares=[guard(token), _errors], client_max_size=_MAX_BODY)
    app[PLANE_KEY] = plane
    app[SHUTDOWN_KEY] = shutdown
    app[RELEASES_KEY] = ReleaseResolver(plane.state_dir)
    base = "/v1/envs/{env}/services/{service}"
    app.router.add_get("/v1/status", _status)
    app.router.add_post("/v1/shutdown", _shutdown)
    app.router.add_post("/v1/spans/store", _store_spans)
    app.router.add_put("/v1/envs/{env}", _put_environment)
    app.router.add_put(base, _put_route)
    app.router.add_put(base + "/slots/{slot}", _provision)
    app.router.add_get(base + "/slots/{slot}", _health)
    app.router.add_delete(base + "/slots/{slot}", _scale_down)
    app.router.add_put(base + "/weights", _set_weights)
    app.router.add_get(base + "/weights", _get_weights)
    app.router.add_get(base + "/metrics", _metrics)
    app.router.add_get(base + "/endpoint", _endpoint)
    add_edge_routes(app, base, lambda request: request.app[PLANE_KEY].edges)  # api rules and keys
    return app


def _plane(request: web.Request) -> Plane:
    return request.app[PLANE_KEY]


def _slot(value: str | None) -> Slot:
    slot = parse_slot(value)
    if slot is None:
        raise PlaneRequestError(400, f"unknown slot {value!r}", "use blue or green")
    return slot


async def _body(request: web.Request) -> dict[str, Any]:
    data = await request.json()
    if not isinstance(data, dict):
        raise PlaneRequestError(400, "the request body must be a JSON object")
    return data


async def _status(request: web.Request) -> web.Response:
    return web.json_response(_plane(request).status())


async def _store_spans(request: web.Request) -> web.Response:
    """The router's spans held back while it is busy, stored now (``SpanWriter.store_now``),
    for a reader about to read the span store; answers with the writer's counts."""
    stats = await asyncio.get_running_loop().run_in_executor(None, router_tracing.store_held)
    return web.json_response({"router_spans": stats})


async def _shutdown(request: web.Request) -> web.Response:
    request.app[SHUTDOWN_KEY].set()
    return web.json_response({"stopping": True}, status=202)


async def _put_environment(request: web.Request) -> web.Response:
    port = int((await _body(request))["port"])
    changed = await _plane(request).put_environment(request.match_info["env"], port)
    return web.json_response({"changed": changed})


async def _put_route(request: web.Request) -> web.Response:
    route = RouteSpec.from_dict(await _body(request))
    _plane(request).put_route(request.match_info["env"], request.match_info["service"], route)
    return web.json_response({"route": route.to_dict()})


async def _provision(request: web.Request) -> web.Response:
    m = request.match_info
    spec = await request.app[RELEASES_KEY].spec(m["env"], m["service"], await _body(request))
    changed = _plane(request).provision(m["env"], m["service"], _slot(m["slot"]), spec)
    return web.json_response({"changed": changed}, status=202)


async def _health(request: web.Request) -> web.Response:
    m = request.match_info
    digest = request.query.get("digest", "")
    return web.json_response(_plane(request).health(m["env"], m["service"], _slot(m["slot"]), digest))


async def _scale_down(request: web.Request) -> web.Response:
    m = request.match_info
    stopped = await _plane(request).scale_down(m["env"], m["service"], _slot(m["slot"]))
    return web.json_response({"stopped": stopped})


async def _set_weights(request: web.Request) -> web.Response:
    body = await _body(request)
    weights = Weights(blue=int(body["blue"]), green=int(body["green"]))
    m = request.match_info
    _plane(request).set_weights(m["env"], m["service"], weights)
    return web.json_response({"weights": weights.to_dict()})


async def _get_weights(request: web.Request) -> web.Response:
    m = request.match_info
    weights = _plane(request).weights(m["env"], m["service"])
    return web.json_response({"weights": weights.to_dict() if weights else None})


async def _metrics(request: web.Request) -> web.Response:
    m, q = request.match_info, request.query
    stats = _plane(request).measure(m["env"], m["service"], _slot(q.get("slot")), float(q["since"]),
                                    float(q["until"]))
    return web.json_response(stats.to_dict())


async def _endpoint(request: web.Request) -> web.Response:
    """The test route reaching only ``slot``: the bare test listener when ``slot`` is its
    default (the slot provisioned last), else the ``/_slot/<slot>`` pinned prefix."""
    m = request.match_info
    slot = _slot(request.query.get("slot"))
    plane = _plane(request)
    router = plane.routers.get(m["env"])
    route = router.services.get(m["service"]) if router else None
    if router is None or route is None:
        raise PlaneRequestError(404, f"environment {m['env']} has no route for service {m['service']}")
    base = f"http://127.0.0.1:{router.test_port}"
    url = base if route.test_slot is slot else f"{base}/_slot/{slot.value}"
    return web.json_response({"url": url})
