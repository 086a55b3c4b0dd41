"""The local plane's keep-warm timer: each scheduled function's ``live`` alias is pinged every
``every`` seconds with ``concurrency`` concurrent keep-warm events (the local counterpart of
the EventBridge rule ``pipeline bootstrap`` creates on AWS).

Schedules are kept in ``<runtime>/keep_warm.json`` so they survive a restart of the plane,
like the rest of the runtime's configuration. Pings are not requests: the runtime leaves them
out of its metrics; the timer counts them itself (``status``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import PipelineError, UsageError
from pipeline.local.lambda_.warmup import warm

if TYPE_CHECKING:
    from pipeline.local.lambda_.runtime import LambdaRuntime

__all__ = ["KeepWarmTimer"]

QUALIFIER = "live"
TICK = 0.25  # seconds between two looks at the schedules


@dataclass
class _Schedule:
    every: float
    concurrency: int
    next_at: float = 0.0
    pings: int = 0
    rounds: int = 0
    last_errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"every": self.every, "concurrency": self.concurrency, "pings": self.pings,
                "rounds": self.rounds, "last_errors": list(self.last_errors)}


class KeepWarmTimer:
    """Keep-warm schedules of ``runtime``'s functions; ``start`` runs them on the runtime's loop."""

    def __init__(self, runtime: LambdaRuntime, work_dir: Path) -> None:
        self._runtime = runtime
        self._file = work_dir / "keep_warm.json"
        self._schedules: dict[str, _Schedule] = {}
        self._task: asyncio.Task[None] | None = None
        for name, entry in self._read().items():
            with contextlib.suppress(KeyError, TypeError, ValueError):  # a damaged entry is dropped
                self._schedules[str(name)] = _Schedule(float(entry["every"]), int(entry["concurrency"]))

    def set(self, function: str, every: float, concurrency: int) -> dict[str, Any]:
        """Ping ``function`` every ``every`` s with ``concurrency`` pings (``every`` 0 removes
        the schedule). Idempotent: an unchanged schedule keeps its counters and next ping."""
        if every < 0 or concurrency < 1 or concurrency > 5:
            raise UsageError(
                f"invalid keep-warm schedule for {function}: every {every:g}s, concurrency {concurrency}",
                hint="every >= 0 seconds (0 removes it), concurrency 1..5",
            )
        if every == 0:
            self._schedules.pop(function, None)
        else:
            current = self._schedules.get(function)
            if current is None or (current.every, current.concurrency) != (every, concurrency):
                self._schedules[function] = _Schedule(every, concurrency)
        self._write()
        self.start()
        return self.status(function)

    def status(self, function: str) -> dict[str, Any]:
        """``{"every", "concurrency", "pings", "rounds", "last_errors"}``; every 0 when unscheduled."""
        schedule = self._schedules.get(function)
        return schedule.to_dict() if schedule else _Schedule(0.0, 1).to_dict()

    def start(self) -> None:
        """Run the timer (no-op when running, when nothing is scheduled, or outside the loop)."""
        if self._task is not None or not self._schedules:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: started by the next call that has one
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            due = [(name, s) for name, s in self._schedules.items() if s.next_at <= now]
            for name, schedule in due:
                schedule.next_at = now + schedule.every
                await self._ping(name, schedule)
            await asyncio.sleep(TICK)

    async def _ping(self, function: str, schedule: _Schedule) -> None:
        try:
            reports = await warm(self._runtime, function, QUALIFIER, schedule.concurrency)
        except PipelineError as exc:  # no function or no live alias yet: nothing to keep warm
            schedule.last_errors = [exc.message]
            return
        schedule.rounds += 1
        schedule.pings += sum(r.warm for r in reports)
        schedule.last_errors = [e for r in reports for e in r.errors]

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self._file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self) -> None:
        data = {n: {"every": s.every, "concurrency": s.concurrency} for n, s in self._schedules.items()}
        self._file.parent.mkdir(parents=True, exist_ok=True)
        temp = self._file.with_suffix(".tmp")
        temp.write_text(json.dumps(data, sort_keys=True))
        os.replace(temp, self._file)
