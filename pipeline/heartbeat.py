"""``Heartbeat``: keeps a lock's lease renewed on a background thread while the engine works.

The engine runs one action at a time, and an action (a load stage, a readiness wait on a
slow platform, a drain) can last longer than the lease. The heartbeat renews the lease
every ``interval`` seconds (a third of its ttl by default) for as long as it runs, so a
live run never looks stopped to a would-be taker. If a renewal finds the lease lost
(another run took it over, or it was released), the heartbeat stops and ``check()``
raises ``LeaseLost``: the engine then commits nothing more. A renewal that fails for any
other reason (a store briefly unreachable) is tried again at the next beat; if that lasts
a whole ttl another run may take over, and the fenced commit refuses this run's writes.

``interval`` is real time (``threading.Event.wait``): the thread must beat while the
engine's own thread is blocked, whatever clock the engine uses.
"""

from __future__ import annotations

import threading

from pipeline.core.errors import LeaseLost, LockHeldError, PipelineError
from pipeline.core.ports import Lease, LockManager

__all__ = ["Heartbeat"]


class Heartbeat:
    """Renews ``lease`` through ``locks`` every ``interval`` seconds until ``stop()``."""

    def __init__(
        self, locks: LockManager, lease: Lease, ttl: float, *, interval: float | None = None
    ) -> None:
        self._locks = locks
        self._lease = lease
        self._ttl = ttl
        self._interval = interval if interval is not None else ttl / 3
        self._stopping = threading.Event()
        self._guard = threading.Lock()
        self._lost: LockHeldError | None = None
        self._thread = threading.Thread(target=self._beat, name=f"lease {lease.key}", daemon=True)
        self.beats = 0  # renewals done: what tests watch

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and wait for a renewal in flight. Idempotent."""
        self._stopping.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    @property
    def lease(self) -> Lease:
        with self._guard:
            return self._lease

    def renew(self) -> Lease:
        """Renew now (the engine does between actions when the clock says so)."""
        self.check()
        with self._guard:
            try:
                self._lease = self._locks.renew(self._lease, self._ttl)
            except LockHeldError as exc:
                self._lost = exc
                raise self._lost_error() from exc
            return self._lease

    def check(self) -> None:
        """Raise LeaseLost if a renewal found the lease lost."""
        if self._lost is not None:
            raise self._lost_error()

    def _beat(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.renew()
            except LeaseLost:
                return
            except PipelineError:
                continue  # unreachable store: retry at the next beat; fencing keeps writes safe
            self.beats += 1

    def _lost_error(self) -> LeaseLost:
        lost = self._lost
        assert lost is not None
        return LeaseLost(self._lease.key, lost.holder, why="found when renewing the lease")
