"""Live figures of a running load test, for whoever shows progress while it runs.

Locust (``--csv``) rewrites ``<prefix>_stats.csv`` about once a second while it runs; its
``Aggregated`` row holds the totals so far (requests, failures, average requests per
second). ``follow`` waits for locust to exit and, every ``LIVE_INTERVAL`` seconds on the
way, reads that row and hands a ``LiveLoad`` to the current watcher.

A command that shows progress sets the watcher for its own duration
(``with watching(callback): ...``); every ``LoadRunner`` run inside it (from
``pipeline loadtest`` or a deployment's load stage, whichever platform built the stage
runner) reports to it. A context variable keeps the platform factories and the
``StageRunner`` port unaware of the terminal. Without a watcher ``follow`` is a plain wait
and nothing is read. A file being rewritten at the moment it is read yields no figures for
that tick, never an error.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path

LIVE_INTERVAL = 1.0
"""Seconds between two readings of the statistics (locust rewrites them every second)."""


@dataclass(frozen=True, slots=True)
class LiveLoad:
    """The totals of a load test so far. Seconds for times, requests per second for ``rps``."""

    service: str
    elapsed: float
    duration: float
    requests: int = 0
    failures: int = 0
    rps: float = 0.0
    cold_starts: str = ""  # the request chain's cold starts so far ("" when not measured)

    @property
    def remaining(self) -> float:
        return max(0.0, self.duration - self.elapsed)


Watcher = Callable[[LiveLoad], None]

_watcher: ContextVar[Watcher | None] = ContextVar("pipeline_load_watcher", default=None)


@contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    """Report every load test run in this context to ``watcher`` (which must not raise)."""
    token = _watcher.set(watcher)
    try:
        yield
    finally:
        _watcher.reset(token)


def current_watcher() -> Watcher | None:
    return _watcher.get()


def read_totals(stats_csv: Path) -> tuple[int, int, float] | None:
    """(requests, failures, rps) from the ``Aggregated`` row; None while there is none yet."""
    try:
        with stats_csv.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return None
    for row in rows:
        if row.get("Name") == "Aggregated":
            try:
                return int(row["Request Count"]), int(row["Failure Count"]), float(row["Requests/s"])
            except (KeyError, TypeError, ValueError):
                return None  # a row caught half-written
    return None


def follow(
    wait: Callable[[float], int | None],
    deadline: float,
    stats_csv: Path,
    *,
    service: str,
    duration: float,
    clock: Callable[[], float] = time.monotonic,
    cold_starts: Callable[[], str] | None = None,
) -> int | None:
    """Wait (``wait(until)`` returns the exit code, or None if still running at ``until``)
    until the process exits or ``deadline`` (both on ``clock``), reporting live figures to
    the current watcher in between (with ``cold_starts()``'s line, if given). Returns the
    exit code, None on timeout."""
    watcher = current_watcher()
    if watcher is None:
        return wait(deadline)
    started = clock()
    last = LiveLoad(service, 0.0, duration)
    while True:
        code = wait(min(deadline, clock() + LIVE_INTERVAL))
        if code is not None or clock() >= deadline:
            return code
        totals = read_totals(stats_csv)
        elapsed = clock() - started
        last = LiveLoad(service, elapsed, duration, *totals) if totals else _aged(last, elapsed)
        if cold_starts is not None:
            last = replace(last, cold_starts=cold_starts())
        watcher(last)


def _aged(live: LiveLoad, elapsed: float) -> LiveLoad:
    return LiveLoad(live.service, elapsed, live.duration, live.requests, live.failures, live.rps)
