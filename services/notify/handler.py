"""Notify: a Lambda function behind an API Gateway HTTP API (payload format 2.0).

``handle(event, context)`` takes an HTTP API v2 event and returns
``{"statusCode", "headers", "body"}``. Stdlib only. Every path is served under ``/notify``
(and ``/health``, ``/version`` at the root too)::

    GET  /notify/health     200 {"status": "ok"}                       (never faulted)
    GET  /notify/version    200 {"service": "notify", "version": ...}
    POST /notify            202 {"id", "template", "to", "message", "signature"}
                            400 unknown template, missing parameter, or bad body

Cold starts are deliberately visible: importing this module builds the template table and
derives the signing key (``KDF_ITERATIONS`` rounds of PBKDF2, about 100 ms here), and the
first response of each process carries ``x-cold-start: true``.

Warm-up and keep-warm pings: the pipeline invokes the function with
``{"pipeline-keep-warm": true}`` before it shifts traffic (the new version and every function
of a chain that calls it) and on the ``lambda.keep_warm`` schedule. ``is_keep_warm(event)``
recognises them; ``handle`` answers them at once, before any work (copy the helper into your
own handlers: the ping must reach the handler to keep its environment warm).

A "bad release" is a committed change: ``fault.json`` next to this module, e.g.
``{"error_rate": 0.5}``, makes exactly that share of ``POST /notify`` answer 500.
``FAIL_RATE`` in the environment overrides it. The version comes from ``VERSION`` (or
``PIPELINE_VERSION``) in the environment, else the ``VERSION`` file next to this module, else ``0.0.0-dev``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import string
import time
import uuid
from pathlib import Path
from typing import Any

SERVICE = "notify"
PREFIX = "/notify"
HERE = Path(__file__).resolve().parent
KDF_ITERATIONS = int(os.environ.get("NOTIFY_KDF_ITERATIONS", "300000"))

_BASE_TEMPLATES = {
    "order_created": "Hello $name, your order $order_id is confirmed.",
    "order_shipped": "Hello $name, order $order_id left our warehouse.",
    "price_drop": "Good news $name: $product now costs $price.",
    "welcome": "Welcome aboard, $name!",
}
_CHANNELS = ("email", "sms", "push")
DEFAULT_PARAMS = {"name": "there"}  # a greeting without a name still reads well


def _build_templates() -> dict[tuple[str, str], string.Template]:
    """The template table: every template for every channel (sms and push are shortened)."""
    table: dict[tuple[str, str], string.Template] = {}
    for name, text in _BASE_TEMPLATES.items():
        for channel in _CHANNELS:
            table[(name, channel)] = string.Template(text if channel == "email" else text[:120])
    return table


def _read_version() -> str:
    if os.environ.get("VERSION") or os.environ.get("PIPELINE_VERSION"):
        return os.environ.get("VERSION") or os.environ["PIPELINE_VERSION"]
    path = HERE / "VERSION"
    return path.read_text().strip() if path.exists() else "0.0.0-dev"


def _read_fault_rate() -> float:
    path = HERE / "fault.json"
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    return min(1.0, max(0.0, float(os.environ.get("FAIL_RATE", data.get("error_rate", 0.0)))))


# --- import time: the cold start ---------------------------------------------------------

_started = time.perf_counter()
TEMPLATES = _build_templates()
SIGNING_KEY = hashlib.pbkdf2_hmac("sha256", b"notify-signing", b"notify-salt", KDF_ITERATIONS)
VERSION = _read_version()
FAULT_RATE = _read_fault_rate()
COLD_START_MS = (time.perf_counter() - _started) * 1000

KEEP_WARM_KEY = "pipeline-keep-warm"


def is_keep_warm(event: object) -> bool:
    """Whether ``event`` is the pipeline's warm-up or keep-warm ping (answer it at once).

    ``{"pipeline-keep-warm": true}``; ``{"source": "pipeline.warm-up"}`` is the older form.
    """
    if not isinstance(event, dict):
        return False
    return event.get(KEEP_WARM_KEY) is True or event.get("source") == "pipeline.warm-up"


# itertools.count's next() is atomic under the GIL: safe from concurrent invocations.
_invocations = itertools.count(1)
_faultable_calls = itertools.count(1)


def handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Answer one event. Never raises for a bad request: it answers 4xx.

    Takes an HTTP API v2 event; also a REST API (v1) event, a direct invocation such as
    ``{"path": "/notify", "body": {...}}`` (method POST when there is a body), and the
    pipeline's warm-up and keep-warm ping (``is_keep_warm``), answered without any work.
    """
    cold = next(_invocations) == 1
    if is_keep_warm(event):
        status, payload = 200, {"warm": True, "service": SERVICE}
    else:
        method, path = _method_and_path(event)
        status, payload = _route(method, path, event)
    if status < 300:
        payload.setdefault("request_id", getattr(context, "aws_request_id", None) or str(uuid.uuid4()))
    headers = {"content-type": "application/json", "x-cold-start": "true" if cold else "false"}
    return {"statusCode": status, "headers": headers, "body": json.dumps(payload)}


def _method_and_path(event: dict[str, Any]) -> tuple[str, str]:
    http = (event.get("requestContext") or {}).get("http") or {}
    has_body = event.get("body") not in (None, "")
    method = (
        http.get("method")
        or event.get("httpMethod")
        or event.get("method")
        or ("POST" if has_body else "GET")
    )
    path = str(event.get("rawPath") or http.get("path") or event.get("path") or "/")
    return str(method).upper(), path.rstrip("/") or "/"


def _route(method: str, path: str, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if method == "GET" and path in ("/health", f"{PREFIX}/health"):
        return 200, {"status": "ok", "service": SERVICE, "cold_start_ms": round(COLD_START_MS, 1)}
    if method == "GET" and path in ("/version", f"{PREFIX}/version"):
        return 200, {"service": SERVICE, "version": VERSION}
    if path != PREFIX:
        return 404, {"error": f"no route for {method} {path}"}
    if method != "POST":
        return 405, {"error": f"{method} {path} is not allowed: use POST"}
    if _should_fail():
        return 500, {"error": "injected fault (fault.json)"}
    return _notify(_body(event))


def _notify(body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    if body is None:
        return 400, {"error": 'send a JSON object: {"template", "to", "channel", "params"}'}
    name, to, channel = body.get("template"), body.get("to"), body.get("channel", "email")
    params = body.get("params", {})
    template = TEMPLATES.get((str(name), str(channel)))
    if template is None or not isinstance(to, str) or not to or not isinstance(params, dict):
        known = ", ".join(sorted(_BASE_TEMPLATES))
        return 400, {"error": f"need template (one of {known}), channel ({'/'.join(_CHANNELS)}), to, params"}
    try:
        message = template.substitute({**DEFAULT_PARAMS, **{k: str(v) for k, v in params.items()}})
    except KeyError as exc:
        return 400, {"error": f"template {name} needs parameter {exc.args[0]}"}
    signature = hmac.new(SIGNING_KEY, message.encode(), hashlib.sha256).hexdigest()[:16]
    return 202, {
        "id": str(uuid.uuid4()),
        "template": name,
        "channel": channel,
        "to": to,
        "message": message,
        "signature": signature,
    }


def _body(event: dict[str, Any]) -> dict[str, Any] | None:
    raw = event.get("body") or ""
    if isinstance(raw, dict):  # a direct invocation may carry the body as an object
        return raw
    try:
        if event.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode()
        data = json.loads(raw) if raw else None
    except (ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _should_fail() -> bool:
    """Exactly ``FAULT_RATE`` of the calls fail, spread evenly."""
    if FAULT_RATE <= 0:
        return False
    n = next(_faultable_calls)
    return int(n * FAULT_RATE) > int((n - 1) * FAULT_RATE)
