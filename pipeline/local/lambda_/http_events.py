"""HTTP requests to Lambda events and back, in API Gateway's HTTP API payload format 2.0.

``build_event`` turns an HTTP request (the router's, or aiohttp's) into the event an HTTP
API integration sends;
``to_response`` turns an ``InvokeResult`` into the response API Gateway would return:

- a handler result with ``statusCode`` is used as is (``headers``, ``cookies`` as
  ``Set-Cookie``, ``body``, ``isBase64Encoded``);
- any other result is a 200 ``application/json`` response: a string is the body, anything
  else is JSON-encoded (API Gateway's inference for format 2.0);
- throttled → 429, timed out → 504, a function error or a malformed result → 502, each with
  a JSON ``{"message": ...}`` body.

Every response carries ``X-Lambda-Version`` (the version that ran) and, on a cold start,
``X-Lambda-Cold-Start: 1``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from typing import Any

from multidict import CIMultiDict

from pipeline.local.lambda_.model import OK, THROTTLED, TIMED_OUT, InvokeResult
from pipeline.local.messages import Answer, RequestView, json_answer

ACCOUNT = "000000000000"
_HOP_BY_HOP = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})


def route_of(path_rule: str, raw_path: str) -> tuple[str, dict[str, str]]:
    """The route key and path parameters for ``raw_path`` matched by ``path_rule``.

    ``/orders/*`` becomes the greedy route ``ANY /orders/{proxy+}`` with ``proxy`` set to
    the rest of the path; an empty rule is the ``$default`` route.
    """
    if not path_rule:
        return "$default", {}
    if path_rule.endswith("/*"):
        prefix = path_rule[:-1]
        params = {"proxy": raw_path[len(prefix):]} if raw_path.startswith(prefix) else {}
        return f"ANY {prefix}{{proxy+}}", params
    return f"ANY {path_rule}", {}


def build_event(request: RequestView, body: bytes, *, raw_path: str, path_rule: str) -> dict[str, Any]:
    """The HTTP API (v2) event for ``request``; ``raw_path`` is the path the function sees."""
    route_key, params = route_of(path_rule, raw_path)
    headers: dict[str, str] = {}
    for name in request.headers:
        key = name.lower()
        if key != "cookie" and key not in headers:
            headers[key] = ",".join(request.headers.getall(name))
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": request.query_string,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": request.host.split(".")[0],
            "http": {
                "method": request.method,
                "path": raw_path,
                "protocol": f"HTTP/{request.version.major}.{request.version.minor}",
                "sourceIp": request.remote or "",
                "userAgent": request.headers.get("User-Agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    cookies = [c.strip() for h in request.headers.getall("Cookie", []) for c in h.split(";") if c.strip()]
    if cookies:
        event["cookies"] = cookies
    if request.query:
        event["queryStringParameters"] = {k: ",".join(request.query.getall(k)) for k in request.query}
    if params:
        event["pathParameters"] = params
    if body:
        _set_body(event, body)
    return event


def _set_body(event: dict[str, Any], body: bytes) -> None:
    try:
        event["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        event["body"] = base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = True


def to_response(result: InvokeResult) -> Answer:
    """The HTTP response API Gateway would send for ``result`` (see the module docstring)."""
    if result.status == THROTTLED:
        response = _message(429, "Too Many Requests")
    elif result.status == TIMED_OUT:
        response = _message(504, "Endpoint request timed out")
    elif result.status != OK:
        response = _message(502, "Internal Server Error")
    else:
        response = _structured(result.payload)
    if result.version:
        response.headers["X-Lambda-Version"] = result.version
    if result.cold_start:
        response.headers["X-Lambda-Cold-Start"] = "1"
    return response


def unavailable(reason: str) -> Answer:
    """503 for a route whose function cannot be invoked (not published, no alias)."""
    return _message(503, f"Service Unavailable: {reason}")


def _message(status: int, message: str) -> Answer:
    return json_answer({"message": message}, status)


def _structured(payload: Any) -> Answer:
    if not (isinstance(payload, dict) and "statusCode" in payload):
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return Answer(200, text.encode("utf-8"), content_type="application/json; charset=utf-8")
    status = payload["statusCode"]
    headers = payload.get("headers") or {}
    cookies = payload.get("cookies") or []
    body = payload.get("body")
    if not (isinstance(status, int) and 100 <= status <= 599 and isinstance(headers, dict)):
        return _message(502, "Internal Server Error")
    if not (isinstance(cookies, list) and (body is None or isinstance(body, str))):
        return _message(502, "Internal Server Error")
    try:
        data = base64.b64decode(body or "", validate=True) if payload.get("isBase64Encoded") else None
    except (binascii.Error, ValueError):
        return _message(502, "Internal Server Error")
    out: CIMultiDict[str] = CIMultiDict(
        (str(k), str(v)) for k, v in headers.items() if str(k).lower() not in _HOP_BY_HOP
    )
    for cookie in cookies:
        out.add("Set-Cookie", str(cookie))
    if data is None:
        data = (body or "").encode("utf-8")
    return Answer(status, data, out)
