"""The router's spans into the span store: rows queued by the router, written by a thread.

The router's loop turns each finished span into a row (``pipeline.local.spans.row_of``) and
``put`` s it here; ``SpanWriter``'s thread inserts the rows in batches
(``SpanStore.add_rows``), at a lower scheduling priority than the router.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections import deque

from pipeline.local.spans import Row, SpanStore

BACKGROUND_NICE = 10


class SpanWriter:
    """Rows into a ``SpanStore`` in batches, from a thread of its own (the router's spans).

    ``put`` is what a request pays: an append to a deque (thread-safe, no lock taken) and,
    every ``batch`` rows, a wake-up of the thread; the thread also writes what is queued
    every ``delay`` seconds. Beyond ``max_queued`` waiting rows (the store cannot keep up),
    rows are dropped and counted in ``dropped``. ``close`` writes what is left."""

    def __init__(self, store: SpanStore, *, delay: float = 0.25, batch: int = 2048,
                 max_queued: int = 65_536) -> None:
        self.store = store
        self.dropped = 0
        self._delay = delay
        self._batch = batch
        self._max = max_queued
        self._rows: deque[Row] = deque()
        self._wake = threading.Event()
        self._closed = False
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
            while len(self._rows) >= 1 and not self._closed:
                self._write()

    def _write(self) -> None:
        rows = self._rows
        taken = [rows.popleft() for _ in range(min(len(rows), 4 * self._batch))]
        try:
            self.store.add_rows(taken)
        except (sqlite3.Error, OSError) as exc:  # a store that fails (disk full) loses that batch only
            self.dropped += len(taken)
            logging.getLogger("pipeline.local.spans").warning("%d spans not stored: %s", len(taken), exc)
