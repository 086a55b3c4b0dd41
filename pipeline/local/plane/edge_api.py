"""The control API's edge endpoints (same token and rules as ``control_api``)::

    PUT    /v1/envs/{env}/services/{svc}/edge           EdgePolicy   -> {"changed", "synthetic_key"}
    DELETE /v1/envs/{env}/services/{svc}/edge                        -> {"removed"}
    GET    /v1/envs/{env}/services/{svc}/edge/counts?since=&until=   -> {"keys": {name: counts}}
    POST   /v1/envs/{env}/services/{svc}/keys           {"name", "plan"} -> {"key", "secret"}
    GET    /v1/envs/{env}/services/{svc}/keys                        -> {"keys": [...]}
    DELETE /v1/envs/{env}/services/{svc}/keys/{name}                 -> {"key"} (revoked)

The secret of a key is answered once, by the POST that creates it. ``synthetic_key`` is the
key the pipeline's own evidence traffic sends (see ``pipeline.local.http.edge``).

A Lambda route's deployment happens in the Lambda runtime's API (``/lambda/...``: a version
published, an alias's weights set); a middleware sees those answers succeed and empties the
route's cache, as ``Plane.set_weights`` and ``Plane.provision`` do for ECS-style routes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware

from pipeline.local.http.edge import EdgeBook
from pipeline.local.http.edge_keys import KeyRefused
from pipeline.local.http.edge_parts import EdgePolicy
from pipeline.local.plane.environments import PlaneRequestError

BookOf = Callable[[web.Request], EdgeBook]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_LAMBDA_DEPLOY = re.compile(  # a Lambda route's function is <env>_<service> (http.rules.lambda_function_name)
    r"^/lambda/functions/([a-z][a-z0-9-]*)_([a-z][a-z0-9-]*)/(?:aliases/[^/]+|versions)$"
)
T = TypeVar("T")


def add_edge_routes(app: web.Application, base: str, book_of: BookOf) -> None:
    """Register the endpoints of the module docstring under ``base`` (``.../services/{service}``)."""

    def where(request: web.Request) -> tuple[EdgeBook, str, str]:
        return book_of(request), request.match_info["env"], request.match_info["service"]

    async def put_edge(request: web.Request) -> web.Response:
        book, env, service = where(request)
        policy = EdgePolicy.from_dict(await _body(request))
        changed = book.put(env, service, policy)
        synthetic = book.keys.synthetic_secret(env, service)
        return web.json_response({"changed": changed, "synthetic_key": synthetic})

    async def delete_edge(request: web.Request) -> web.Response:
        book, env, service = where(request)
        return web.json_response({"removed": book.remove(env, service)})

    async def counts(request: web.Request) -> web.Response:
        book, env, service = where(request)
        found = book.counts(env, service, float(request.query["since"]), float(request.query["until"]))
        return web.json_response({"keys": {c.key: {"hits": c.hits, "misses": c.misses,
                                                   "throttled": c.throttled, "denied": c.denied}
                                           for c in found}})

    async def create_key(request: web.Request) -> web.Response:
        book, env, service = where(request)
        body = await _body(request)
        plan = body.get("plan")
        edge = book.get(env, service)
        if plan is not None and edge is not None and plan not in edge.policy.plans:
            known = ", ".join(sorted(edge.policy.plans)) or "none"
            raise PlaneRequestError(400, f"{service} in {env} has no usage plan {plan!r} (plans: {known})",
                                    "pass one of its plans, or add the plan to the service's api: block")
        key, secret = _keys(lambda: book.keys.create(env, service, str(body["name"]),
                                                     str(plan) if plan else None))
        return web.json_response({"key": key.to_dict(), "secret": secret}, status=201)

    async def list_keys(request: web.Request) -> web.Response:
        book, env, service = where(request)
        return web.json_response({"keys": [key.to_dict() for key in book.keys.list(env, service)]})

    async def revoke_key(request: web.Request) -> web.Response:
        book, env, service = where(request)
        key = _keys(lambda: book.keys.revoke(env, service, request.match_info["name"]))
        return web.json_response({"key": key.to_dict()})

    app.middlewares.append(_lambda_deployed(book_of))
    app.router.add_put(base + "/edge", put_edge)
    app.router.add_delete(base + "/edge", delete_edge)
    app.router.add_get(base + "/edge/counts", counts)
    app.router.add_post(base + "/keys", create_key)
    app.router.add_get(base + "/keys", list_keys)
    app.router.add_delete(base + "/keys/{name}", revoke_key)


def _lambda_deployed(book_of: BookOf) -> Middleware:
    """Empties a Lambda route's cache once its function got a new version or alias weights."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        found = _LAMBDA_DEPLOY.match(request.path) if request.method in ("PUT", "POST") else None
        if found and 200 <= response.status < 300:
            book_of(request).deployed(found[1], found[2])
        return response

    return middleware


def _keys(call: Callable[[], T]) -> T:
    try:
        return call()
    except KeyRefused as exc:
        raise PlaneRequestError(exc.status, exc.message, exc.hint) from exc


async def _body(request: web.Request) -> dict[str, Any]:
    data = await request.json()
    if not isinstance(data, dict):
        raise PlaneRequestError(400, "the request body must be a JSON object")
    return data
