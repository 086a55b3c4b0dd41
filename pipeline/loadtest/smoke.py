"""The test stage's checks: a smoke command, or HTTP requests through the slot's test route.

- ``SmokeRequest.from_event`` turns a Lambda smoke event into the HTTP request that would
  produce it: an API Gateway HTTP API v2 event (``rawPath``, ``requestContext.http``,
  ``body``, ``isBase64Encoded``) becomes that method, path and body; so does a REST API v1
  event (``httpMethod``, ``path``) or a plain spec ``{path, body, method, headers, expect}``
  (method POST by default, a non-string body sent as JSON, ``expect`` the accepted status
  codes); any other mapping is POSTed as a JSON body to the function's route. Requests go
  through the test route, so the router (or API Gateway) turns them back into events for
  the new version only.
- ``routed_path`` puts a path such as ``/health`` under the service's route (``/orders*``
  -> ``/orders/health``) so that an ALB-style path rule sends it to the service.
- ``run_command`` runs a shell command with ``TARGET_URL`` set to the test route.

Nothing here retries: the stage is run once per deployment attempt and reports what it saw.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.loadtest.processes import ProcessGroup, tail


@dataclass(frozen=True, slots=True)
class SmokeRequest:
    """One HTTP check: ``method`` ``path`` with ``body``; passes on a status in ``expect``
    (any 2xx when empty)."""

    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    expect: tuple[int, ...] = ()

    @classmethod
    def from_event(cls, event: Mapping[str, Any], default_path: str) -> SmokeRequest:
        """The request behind a Lambda smoke ``event`` (see the module docstring)."""
        if "rawPath" in event or "requestContext" in event:  # HTTP API v2 event
            http = event.get("requestContext", {}).get("http", {})
            path = str(event.get("rawPath") or http.get("path") or default_path)
            query = str(event.get("rawQueryString") or "")
            method = str(http.get("method") or "POST")
            return cls._of(method, path + (f"?{query}" if query else ""), event)
        if "path" in event or "httpMethod" in event:  # REST API v1 event or {path, body} spec
            method = str(event.get("httpMethod") or event.get("method") or "POST")
            expect = event.get("expect")
            codes = (expect,) if isinstance(expect, int) else tuple(expect or ())
            request = cls._of(method, str(event.get("path") or default_path), event)
            return cls(request.method, request.path, request.body, request.headers, tuple(map(int, codes)))
        body = json.dumps(dict(event)).encode()
        return cls("POST", default_path, body, (("content-type", "application/json"),))

    @classmethod
    def _of(cls, method: str, path: str, event: Mapping[str, Any]) -> SmokeRequest:
        """``method path`` with the event's ``body`` (text, base64 text or a JSON value)."""
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        raw = event.get("body")
        if raw is None:
            body = b""
        elif isinstance(raw, str):
            body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
        else:
            body = json.dumps(raw).encode()
            headers.setdefault("content-type", "application/json")
        return cls(method.upper(), path, body, tuple(headers.items()))

    def describe(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class SmokeOutcome:
    request: SmokeRequest
    status: int | None  # None: no HTTP response at all
    passed: bool
    detail: str
    elapsed_ms: float


def route_prefix(pattern: str) -> str:
    """The literal start of an ALB path pattern, without a trailing slash (``/orders*`` ->
    ``/orders``; ``/*`` -> ``''``)."""
    literal = re.split(r"[*?]", pattern, maxsplit=1)[0]
    return literal.rstrip("/")


def routed_path(pattern: str, path: str) -> str:
    """``path`` if the route ``pattern`` matches it, else ``path`` under the route's prefix."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    if re.fullmatch(regex, path, re.DOTALL):
        return path
    return route_prefix(pattern) + path


def check(endpoint: str, request: SmokeRequest, timeout: float) -> SmokeOutcome:
    """Send ``request`` to ``endpoint`` (a base URL) and judge the status."""
    url = endpoint.rstrip("/") + request.path
    http = urllib.request.Request(
        url, data=request.body or None, method=request.method, headers=dict(request.headers)
    )
    started = time.monotonic()
    status: int | None
    try:
        with urllib.request.urlopen(http, timeout=max(0.5, timeout)) as response:
            status, text = response.status, response.read(300).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read(300).decode(errors="replace")
    except (OSError, ValueError) as exc:  # refused, reset, timed out, bad URL
        status, text = None, str(getattr(exc, "reason", exc))
    elapsed = (time.monotonic() - started) * 1000
    ok = status is not None and (status in request.expect if request.expect else 200 <= status < 300)
    detail = f"HTTP {status}" if status is not None else f"no response: {text}"
    if status is not None and not ok:
        detail += f": {text.strip()[:200]}"
    return SmokeOutcome(request, status, ok, detail, round(elapsed, 1))


def check_all(endpoint: str, requests: Sequence[SmokeRequest], timeout: float) -> tuple[SmokeOutcome, ...]:
    """Every request in order within ``timeout`` seconds overall (each gets what is left)."""
    deadline = time.monotonic() + timeout
    outcomes = []
    for request in requests:
        outcomes.append(check(endpoint, request, min(10.0, deadline - time.monotonic())))
    return tuple(outcomes)


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    command: str
    exit_code: int | None  # None: timed out and stopped
    output: str
    log: Path

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def run_command(
    command: str, *, endpoint: str, cwd: Path, log: Path, timeout: float, environ: Mapping[str, str]
) -> CommandOutcome:
    """Run ``command`` with ``/bin/sh`` in ``cwd``, ``TARGET_URL`` set to ``endpoint``; output to
    ``log``. Stopped (with its children) after ``timeout`` seconds."""
    env = {**environ, "TARGET_URL": endpoint}
    with ProcessGroup(cwd=cwd, env=env) as group:
        proc = group.start(["/bin/sh", "-c", command], log)
        code = group.wait(proc, time.monotonic() + timeout)
    return CommandOutcome(command, code, tail(log), log)
