"""The router's spans into the span store: rows queued by the router, written by a thread.

The router's loop turns each finished span into a row (``pipeline.local.spans.row_of``) and
``put`` s it here; ``SpanWriter``'s thread inserts the rows in batches
(``SpanStore.add_rows``), at a lower scheduling priority than the router.

Storing yields to traffic. While the router is busy (more than ``quiet`` spans a second
arrive), the rows are held in memory, up to ``hold`` of them, and written once it is quiet
again: SQLite's inserts, run while the router is saturated, cost it a sixth of its
requests per second and 1.6 times its p99 in paired runs, wherever they run (another thread
or another process: the cores are shared), while the same inserts in a quiet moment cost it
nothing. A burst of up to ``hold`` spans (about six seconds of a saturated router) is stored
after it ends; beyond that, rows are written while traffic flows, and beyond
``max_queued`` they are dropped and counted. Quiet traffic is written within ``delay``.
A reader that needs the spans now (a canary's per-hop analysis, ``pipeline trace``) asks
for them (``store_now``, through the plane's ``POST /v1/spans/store``): what is held is
written at once, whatever the traffic.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections import deque

from pipeline.local.spans import Row, SpanStore

BACKGROUND_NICE = 10


class SpanWriter:
    """Rows into a ``SpanStore`` in batches, from a thread of its own (the router's spans).

    ``put`` is what a request pays: an append to a deque (thread-safe, no lock taken) and,
    every ``batch`` rows, a wake-up of the thread; the thread also looks at the queue every
    ``delay`` seconds. It writes what is queued unless the router is busy (see the module's
    docstring: ``quiet`` spans a second, ``hold`` rows). Beyond ``max_queued`` waiting rows,
    rows are dropped and counted in ``dropped``. ``close`` writes what is left."""

    def __init__(self, store: SpanStore, *, delay: float = 0.25, batch: int = 2048,
                 max_queued: int = 98_304, quiet: float = 1000.0, hold: int = 65_536) -> None:
        self.store = store
        self.dropped = 0
        self.written = 0
        self.held = 0  # times the queue was held back because the router was busy
        self._delay = delay
        self._batch = batch
        self._max = max_queued
        self._quiet = quiet
        self._hold = min(hold, max_queued)
        self._rows: deque[Row] = deque()
        self._seen, self._since = 0, time.monotonic()  # the queue's length after the last look, and when
        self._wake = threading.Event()
        self._closed = False
        self._urgent = False  # a reader asked for what is held (store_now)
        self._thread = threading.Thread(target=self._run, name="pipeline-span-writer", daemon=True)
        self._thread.start()

    def put(self, row: Row) -> None:
        rows = self._rows
        if len(rows) >= self._max:
            self.dropped += 1
            return
        rows.append(row)
        if len(rows) == self._batch:
            self._wake.set()

    @property
    def queued(self) -> int:
        """Rows waiting to be written."""
        return len(self._rows)

    def stats(self) -> dict[str, int]:
        return {"written": self.written, "queued": self.queued, "dropped": self.dropped, "held": self.held}

    def store_now(self, timeout: float = 10.0) -> bool:
        """Have the thread write every row queued so far, busy router or not, and wait for it
        (at most ``timeout`` seconds); False if it did not finish in time."""
        target = self.written + self.dropped + len(self._rows)
        self._urgent = True
        self._wake.set()
        deadline = time.monotonic() + timeout
        while self.written + self.dropped < target:
            if time.monotonic() > deadline or self._closed:
                return False
            time.sleep(0.005)
        return True

    def flush(self) -> None:
        """Write what is queued now (on the caller's thread)."""
        while self._rows:
            self._write()

    def close(self) -> None:
        """Stop the thread and write what is left. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(10.0)
        self.flush()

    def _run(self) -> None:
        with contextlib.suppress(AttributeError, OSError):  # Linux: a thread is a task with its own nice
            # storing spans is background work: under load, the scheduler serves the router first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
        while not self._closed:
            self._wake.wait(self._delay)
            self._wake.clear()
            if not self._closed:
                self._look(time.monotonic())

    def _look(self, now: float) -> None:
        """Write what is queued, unless the router is busy: more than ``quiet`` rows a second
        arrived since the last look (at ``now``, monotonic seconds) and fewer than ``hold``
        are waiting."""
        queued = len(self._rows)
        rate = (queued - self._seen) / max(now - self._since, 1e-3)
        urgent, self._urgent = self._urgent, False
        if rate > self._quiet and queued < self._hold and not urgent:
            self.held += 1  # the router's traffic first: the rows wait
        else:
            while self._rows and not self._closed:
                self._write()
        self._seen, self._since = len(self._rows), now

    def _write(self) -> None:
        rows = self._rows
        taken = [rows.popleft() for _ in range(min(len(rows), 4 * self._batch))]
        try:
            self.store.add_rows(taken)
            self.written += len(taken)
        except (sqlite3.Error, OSError) as exc:  # a store that fails (disk full) loses that batch only
            self.dropped += len(taken)
            logging.getLogger("pipeline.local.spans").warning("%d spans not stored: %s", len(taken), exc)
