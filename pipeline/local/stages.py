"""A minimal ``StageRunner``: HTTP smoke checks through a slot's test route.

Used by the local factory when the load-test package (``pipeline.loadtest``) is not
installed. ``test`` GETs the health path (ECS) or POSTs each smoke event (Lambda) through
the endpoint and passes when every answer is 2xx, retrying a failed check until half of
the stage's timeout is spent. ``load`` sends ``load_requests`` GETs to the health path and
passes when none fails; its summary says it is a smoke burst, not a load test.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from pipeline.core.model import StageResult


class HttpSmokeStages:
    """``StageRunner`` on plain HTTP; ``health_path`` is the service's health check path."""

    def __init__(self, health_path: str = "/health", *, smoke_events: Sequence[dict[str, Any]] = (),
                 load_requests: int = 50) -> None:
        self._health_path = health_path
        self._events = tuple(smoke_events)
        self._load_requests = load_requests

    def run(self, stage: str, endpoint: str, timeout: float) -> StageResult:
        """``stage`` "test" or "load" against ``endpoint``; returns within ``timeout`` seconds."""
        deadline = time.monotonic() + max(1.0, timeout)
        base = endpoint.rstrip("/")
        if stage == "load":
            return self._burst(base, deadline)
        checks: list[tuple[str, bytes | None]] = [(base + "/", json.dumps(e).encode()) for e in self._events]
        checks = checks or [(base + self._health_path, None)]
        for url, body in checks:
            ok, why = _retry(url, body, time.monotonic() + (deadline - time.monotonic()) / 2)
            if not ok:
                return StageResult(False, f"smoke check failed: {why}")
        what = f"{len(checks)} smoke event(s)" if self._events else f"GET {self._health_path}"
        return StageResult(True, f"{what} answered 2xx through {endpoint}")

    def _burst(self, base: str, deadline: float) -> StageResult:
        url = base + self._health_path
        failures: list[str] = []
        sent = 0
        for _ in range(self._load_requests):
            if time.monotonic() >= deadline:
                break
            sent += 1
            ok, why = _request(url, None, max(0.1, deadline - time.monotonic()))
            if not ok:
                failures.append(why)
        if failures or sent == 0:
            return StageResult(False, f"smoke burst: {len(failures)}/{sent} requests failed"
                               + (f", first: {failures[0]}" if failures else ""))
        return StageResult(True, f"smoke burst only (no load runner installed): {sent}/{sent} GET "
                           f"{self._health_path} answered 2xx")


def _retry(url: str, body: bytes | None, until: float) -> tuple[bool, str]:
    ok, why = _request(url, body, 5.0)
    while not ok and time.monotonic() < until:
        time.sleep(0.2)
        ok, why = _request(url, body, 5.0)
    return ok, why


def _request(url: str, body: bytes | None, timeout: float) -> tuple[bool, str]:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=min(timeout, 5.0)) as resp:
            resp.read()
            return 200 <= resp.status < 300, f"{url} answered {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url} answered {exc.code}"
    except (OSError, ValueError) as exc:
        return False, f"{url} failed: {exc}"
