"""The execution environments of one version: idle warm workers, busy ones, provisioned ones.

An invocation takes an idle warm worker when there is one (a warm start) or starts a new
one (a cold start); the worker returns to the idle list afterwards. Idle on-demand workers
are stopped after ``idle_timeout`` seconds. Provisioned concurrency keeps ``target``
initialised workers alive that are never reaped for idleness: they are started in the
background, and a provisioned worker that dies (a timeout, a crash) is replaced.

Everything here runs on the runtime's event loop; nothing is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from pipeline.local.lambda_.model import ProvisionedStatus
from pipeline.local.lambda_.worker import InitFailed, Worker

Spawn = Callable[[], Awaitable[Worker]]


class VersionPool:
    """Workers of one version. ``spawn`` starts one initialised worker or raises InitFailed."""

    def __init__(self, spawn: Spawn, *, idle_timeout: float) -> None:
        self._spawn = spawn
        self._idle_timeout = idle_timeout
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._warm_tasks: set[asyncio.Task[None]] = set()
        self._stop_tasks: set[asyncio.Task[None]] = set()
        self._target = 0
        self._warming = 0
        self._failure = ""
        self._closed = False

    # --- invocations ----------------------------------------------------------------

    async def acquire(self) -> tuple[Worker, bool]:
        """An exclusive worker and whether it was a cold start. Raises InitFailed."""
        self.reap()
        while self._idle:
            worker = self._idle.pop()  # the most recently used: keeps the fewest workers hot
            if worker.alive:
                self._busy.add(worker)
                return worker, False
            self._discard(worker)
        worker = await self._spawn()
        if self._closed:
            await worker.stop()
            raise InitFailed({"errorType": "Runtime.Shutdown", "errorMessage": "the runtime is closing"}, 0.0)
        self._busy.add(worker)
        return worker, True

    def release(self, worker: Worker) -> None:
        """Give a worker back after an invocation; a broken or surplus one is stopped."""
        self._busy.discard(worker)
        if self._closed:
            worker.kill()
            return
        surplus = worker.provisioned and self.provisioned_live() > self._target
        if not worker.reusable or not worker.alive or surplus:
            self._discard(worker)
            return
        worker.last_used = time.monotonic()
        self._idle.append(worker)

    # --- provisioned concurrency ------------------------------------------------------

    def set_provisioned(self, target: int) -> None:
        """Keep ``target`` provisioned workers. Idempotent; starts or stops workers in the background."""
        self._target = target
        self._failure = ""
        for worker in [w for w in self._idle if w.provisioned]:
            if self.provisioned_live() <= target:
                break
            self._idle.remove(worker)
            self._discard(worker)
        self.top_up()

    def top_up(self) -> None:
        """Start the provisioned workers that are missing (no-op without a running loop)."""
        if self._closed or self._failure:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # warmed on the next call made from the loop
        for _ in range(self._target - self.provisioned_live() - self._warming):
            self._warming += 1
            _track(self._warm_tasks, loop.create_task(self._warm_one()))

    def provisioned_live(self) -> int:
        return sum(1 for w in (*self._idle, *self._busy) if w.provisioned and w.alive)

    def status(self) -> tuple[ProvisionedStatus, int, str]:
        """(status, initialised provisioned workers, failure reason)."""
        live = self.provisioned_live()
        if live >= self._target:
            return "READY", live, ""
        if self._failure:
            return "FAILED", live, self._failure
        self.top_up()
        return "IN_PROGRESS", live, ""

    async def _warm_one(self) -> None:
        try:
            worker = await self._spawn()
        except InitFailed as exc:
            self._failure = str(exc)
            return
        finally:
            self._warming -= 1
        worker.provisioned = True
        if self._closed or self.provisioned_live() >= self._target:
            await worker.stop()
            return
        self._idle.append(worker)

    # --- housekeeping ---------------------------------------------------------------

    @property
    def workers(self) -> list[Worker]:
        return [*self._idle, *self._busy]

    def reap(self) -> None:
        """Stop idle on-demand workers unused for ``idle_timeout`` seconds, and dead ones."""
        now = time.monotonic()
        keep: list[Worker] = []
        for worker in self._idle:
            stale = not worker.provisioned and now - worker.last_used > self._idle_timeout
            if stale or not worker.alive:
                self._discard(worker)
            else:
                keep.append(worker)
        self._idle = keep

    async def close(self) -> None:
        """Stop every worker and background start of this version. Idempotent."""
        self._closed = True
        for task in list(self._warm_tasks):
            task.cancel()
        workers, self._idle = [*self._idle, *self._busy], []
        self._busy.clear()
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._warm_tasks, *self._stop_tasks, return_exceptions=True)

    def _discard(self, worker: Worker) -> None:
        """Kill a worker now and reap it in the background; replace it if it was provisioned."""
        was_provisioned, worker.provisioned = worker.provisioned, False
        worker.kill()
        with contextlib.suppress(RuntimeError):  # no running loop: its exit is reaped later
            _track(self._stop_tasks, asyncio.get_running_loop().create_task(worker.stop()))
        if was_provisioned:
            self.top_up()


def _track(tasks: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
    tasks.add(task)
    task.add_done_callback(tasks.discard)
