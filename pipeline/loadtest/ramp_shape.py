"""The step-load shape, loaded by locust next to a service's locustfile; never imported here.

``LoadRunner`` runs ``python -m locust -f <this file>,<locustfile>`` for a ramp, with the
plan in ``$PIPELINE_RAMP`` (``{"levels": [...], "step_duration": s, "spawn_rate": r}``)
and the output file in ``$PIPELINE_RAMP_STEPS``. This file comes first, so its shape is
the one locust runs even when the locustfile defines another.

At every step boundary the shape snapshots locust's running totals and appends the
difference (requests, failures, response-time histogram) and the throttles seen since the
last boundary to the output file, rewritten whole each time so a killed run leaves every
finished step readable. Throttles are counted from the responses themselves (see
``pipeline.loadtest.ramp``); distributed workers ship their counts to the master with
their regular stats reports, so in a distributed run figures reach a step up to one report
interval (3 s) late. When locust quits, what arrived after the last step closed (answers
in flight, the workers' last reports) is booked to that step.

Only the standard library and locust: this runs inside locust's gevent-patched process.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from locust import LoadTestShape, events

_PLAN: dict[str, Any] = json.loads(os.environ.get("PIPELINE_RAMP") or "{}")
_STEPS_FILE = os.environ.get("PIPELINE_RAMP_STEPS", "")
_REPORT_KEY = "pipeline_ramp_signals"
SIGNALS = ("key_throttled", "function_throttled", "server_errors")
_signals: dict[str, int] = {}
"""Throttles and server errors since the last step boundary (or report to the master)."""


def signal_of(status: int | None, lambda_version: object) -> str | None:
    """Which counter a response adds to: a 429 from a Lambda runtime (it names the version)
    is a function throttle, any other 429 an edge (key) throttle; 5xx a server error."""
    if status == 429:
        return "function_throttled" if lambda_version else "key_throttled"
    if status is not None and status >= 500:
        return "server_errors"
    return None


def _count(response: Any = None, **_: Any) -> None:
    status = getattr(response, "status_code", None)
    headers = getattr(response, "headers", None)
    version = headers.get("X-Lambda-Version") if headers is not None else None
    name = signal_of(status if isinstance(status, int) else None, version)
    if name is not None:
        _signals[name] = _signals.get(name, 0) + 1


def _ship(client_id: str, data: dict[str, Any], **_: Any) -> None:
    data[_REPORT_KEY] = dict(_signals)
    _signals.clear()


def _merge(client_id: str, data: dict[str, Any], **_: Any) -> None:
    for name, count in (data.get(_REPORT_KEY) or {}).items():
        _signals[name] = _signals.get(name, 0) + int(count)


# locust's EventHook.add_listener has no annotations
events.request.add_listener(_count)  # type: ignore[no-untyped-call]
events.report_to_master.add_listener(_ship)  # type: ignore[no-untyped-call]
events.worker_report.add_listener(_merge)  # type: ignore[no-untyped-call]


class PipelineRamp(LoadTestShape):
    """``levels[i]`` users during step i, ``step_duration`` seconds each; then stop."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # locust's __init__ has no annotations
        self.levels = [int(n) for n in _PLAN.get("levels", [])]
        self.step_duration = float(_PLAN.get("step_duration", 1.0))
        self.spawn_rate = float(_PLAN.get("spawn_rate", 10.0))
        self.index = -1
        self.mark: tuple[float, int, int, dict[int, int]] = (time.time(), 0, 0, {})
        self.closed: tuple[float, int, int, dict[int, int]] | None = None  # the last step's mark
        self.records: list[dict[str, Any]] = []
        events.quitting.add_listener(self._final)  # type: ignore[no-untyped-call]  # as above

    def tick(self) -> tuple[int, float] | None:
        index = int((time.perf_counter() - self.start_time) // self.step_duration)  # as get_run_time()
        if index != self.index:
            if self.index >= 0:
                self._close_step()
            self.index = index
            self.mark = self._totals()
        if index >= len(self.levels):
            return None
        return self.levels[index], self.spawn_rate

    def _totals(self) -> tuple[float, int, int, dict[int, int]]:
        total = self.runner.stats.total if self.runner is not None else None
        if total is None:
            return time.time(), 0, 0, {}
        return time.time(), total.num_requests, total.num_failures, dict(total.response_times)

    def _step(self, mark: tuple[float, int, int, dict[int, int]], users: int,
              signals: dict[str, int]) -> dict[str, Any]:
        """The step from ``mark`` to the running totals now."""
        started, requests, failures, histogram = mark
        ended, requests_now, failures_now, histogram_now = self._totals()
        return {
            "users": users,
            "started": started,
            "ended": ended,
            "requests": requests_now - requests,
            "failures": failures_now - failures,
            "response_times": {
                str(ms): count - histogram.get(ms, 0)
                for ms, count in histogram_now.items()
                if count - histogram.get(ms, 0) > 0
            },
            **signals,
        }

    def _close_step(self) -> None:
        users = self.levels[min(self.index, len(self.levels) - 1)]
        self.records.append(self._step(self.mark, users, dict(_signals)))
        _signals.clear()
        self.closed = self.mark
        self._write()

    def _final(self, **_: Any) -> None:
        """At quitting, book to the last step what arrived after it closed: answers still in
        flight, and in a distributed run the workers' last reports. Its time span stays."""
        if not self.records or self.closed is None:
            return
        last = self.records[-1]
        signals = {name: int(last.get(name, 0)) + _signals.get(name, 0) for name in SIGNALS}
        _signals.clear()
        self.records[-1] = {**self._step(self.closed, int(last["users"]), signals), "ended": last["ended"]}
        self._write()

    def _write(self) -> None:
        if _STEPS_FILE:
            partial = _STEPS_FILE + ".part"
            with open(partial, "w", encoding="utf-8") as handle:
                json.dump(self.records, handle)
            os.replace(partial, _STEPS_FILE)
