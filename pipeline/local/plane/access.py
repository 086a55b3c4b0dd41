"""Who may drive the plane's control API: the holder of its token, from this machine.

The plane's control API can start processes, so it is not an open door:

- every request carries ``Authorization: Bearer <token>``; the token is a random
  ``secrets.token_urlsafe(32)`` written by ``pipeline local up`` to ``plane.token``, mode
  0600, in the plane's folder (``.pipeline/`` or ``$PIPELINE_LOCAL_HOME``), mode 0700, so
  only the account that started the plane can read it; it is compared in constant time;
- a POST, PUT, PATCH or DELETE must be ``Content-Type: application/json`` (a web page cannot send
  that cross-origin without a CORS preflight, which the API never grants);
- the ``Host`` header must name the loopback address and the port the API listens on
  (``127.0.0.1``, ``localhost`` or ``[::1]``): a DNS-rebinding page sends its own host name;
- a request carrying an ``Origin`` other than that loopback address is refused.

The data path ``/lambda/invoke/...`` (a Lambda slot's test route, which smoke and load
stages call like any HTTP endpoint) is exempt: it only invokes code already deployed,
as the environment's router listeners do. So is the trace receiver ``/otlp/v1/traces``, which
takes its own key, one that can only write spans (``pipeline.local.plane.otlp``).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from pipeline.local.private_files import private_dir, write_private

TOKEN_FILE = "plane.token"
TOKEN_HEADER = "Authorization"
OPEN_PREFIXES = ("/lambda/invoke/", "/otlp/")  # /otlp/ checks its own span key (plane/otlp.py)
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_token(state_dir: Path) -> str:
    """A fresh token for a plane about to start in ``state_dir``, written to ``plane.token``."""
    token = secrets.token_urlsafe(32)
    write_private(private_dir(state_dir) / TOKEN_FILE, token.encode())
    return token


def read_token(state_dir: Path) -> str:
    """The token of the plane of ``state_dir``; "" when there is none (no plane started yet)."""
    try:
        return (Path(state_dir) / TOKEN_FILE).read_text().strip()
    except OSError:
        return ""


def auth_headers(token: str) -> dict[str, str]:
    return {TOKEN_HEADER: f"Bearer {token}"} if token else {}


def guard(token: str) -> Middleware:
    """The middleware enforcing the module docstring's rules; refusals answer 401/403/415."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(OPEN_PREFIXES):
            return await handler(request)
        refusal = _refusal(request, expected)
        if refusal is not None:
            status, message, hint = refusal
            return web.json_response({"error": message, "hint": hint}, status=status)
        return await handler(request)

    return _guard


def _refusal(request: web.Request, expected: bytes) -> tuple[int, str, str] | None:
    port = _local_port(request)
    allowed = {f"{host}:{port}" for host in _LOOPBACK}
    host = request.headers.get("Host", "")
    if host not in allowed:
        return 403, f"refused: Host {host!r} is not this plane's loopback address", \
            f"call http://127.0.0.1:{port} directly"
    origin = request.headers.get("Origin")
    if origin is not None and origin.removeprefix("http://") not in allowed:
        return 403, f"refused: requests from the web origin {origin!r} are not accepted", \
            "the control API is for the pipeline CLI only"
    given = request.headers.get(TOKEN_HEADER, "").encode()
    if not hmac.compare_digest(given, expected):
        what = "has no" if not given else "has a wrong"
        return 401, f"refused: the request {what} plane token", \
            "use the pipeline CLI; it reads plane.token from the plane's folder (.pipeline/ or " \
            "$PIPELINE_LOCAL_HOME)"
    if request.method in _BODY_METHODS and request.content_type != "application/json":
        return 415, f"refused: {request.method} needs Content-Type application/json, not " \
            f"{request.content_type!r}", "send a JSON body with Content-Type: application/json"
    return None


def _local_port(request: web.Request) -> int:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sockname[1]) if sockname else 0
