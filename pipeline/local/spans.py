"""The local plane's span store: recent trace spans in one SQLite file, and queries over them.

Spans arrive from the plane itself (the router's, in process) and from every replica and
Lambda worker (OTLP/HTTP to the plane's receiver, ``pipeline.local.plane.otlp``). They are
kept in ``<plane folder>/spans.db`` (``.pipeline/`` or ``$PIPELINE_LOCAL_HOME``), mode 0600,
WAL, one short transaction per batch, so ``pipeline trace`` can read while the plane writes.

The store is bounded: spans older than ``max_age`` seconds (default 24 h) and all but the
newest ``max_spans`` (default 200 000) are deleted as new ones arrive. A trace whose oldest
spans were pruned shows what is left of it.

Queries: ``find`` lists traces (``TraceSummary``, newest first) having a span that matches
every given filter; ``trace`` returns one trace's spans (``SpanRecord``) by start time.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.local.private_files import private_dir, private_file

SPANS_FILE = "spans.db"
MAX_SPANS = 200_000
MAX_AGE = 24 * 3600.0
SLOT_KEY = "pipeline.slot"
RELEASE_KEY = "pipeline.release"
ENVIRONMENT_KEY = "pipeline.environment"
HTTP_STATUS_KEY = "http.response.status_code"
_PRUNE_EVERY = 500  # spans added between two prunes (a prune is one indexed DELETE)
Row = tuple[Any, ...]
_COLUMNS = 13
_ROWS_PER_STATEMENT = 128  # 1,664 parameters, bound in about a tenth of a millisecond
_STATEMENT_SIZES = (_ROWS_PER_STATEMENT, 16, 1)  # a few shapes, each prepared once and cached

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT, name TEXT NOT NULL,
    service TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL, status TEXT NOT NULL,
    http_status INTEGER, slot TEXT, release TEXT, environment TEXT, attributes TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id));
CREATE INDEX IF NOT EXISTS spans_start ON spans (start);
"""


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """One finished span. Times are epoch seconds; ``status`` is ``ok``, ``error`` or ``unset``;
    ``parent_id`` is None for a trace's root (or a span whose parent is in another system)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    start: float
    end: float
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = "unset"

    @property
    def duration_ms(self) -> float:
        return max(0.0, (self.end - self.start) * 1000.0)

    def to_json(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "span_id": self.span_id, "parent_id": self.parent_id,
                "name": self.name, "service": self.service, "start": self.start, "end": self.end,
                "duration_ms": round(self.duration_ms, 3), "status": self.status,
                "attributes": self.attributes}


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """One trace in a listing: its root (or earliest) span, its extent and its services."""

    trace_id: str
    name: str
    service: str
    start: float
    duration_ms: float
    spans: int
    services: tuple[str, ...]
    status: str
    slot: str | None
    release: str | None

    def to_json(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "name": self.name, "service": self.service,
                "start": self.start, "duration_ms": round(self.duration_ms, 3), "spans": self.spans,
                "services": list(self.services), "status": self.status, "slot": self.slot,
                "release": self.release}


class SpanStore:
    """Spans in ``path`` (created 0600). Safe from many threads: reads open a connection per
    call; writes share one kept open (under ``_lock``), because closing the last connection
    of a WAL database checkpoints it, which cost three times the inserts of a batch."""

    def __init__(self, path: Path, *, max_spans: int = MAX_SPANS, max_age: float = MAX_AGE) -> None:
        self.path = Path(path)
        self.max_spans = max_spans
        self.max_age = max_age
        self._lock = threading.Lock()
        self._since_prune = 0
        self._writer: sqlite3.Connection | None = None
        self._sizes: tuple[int, ...] = _STATEMENT_SIZES
        private_dir(self.path.parent)
        private_file(self.path)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @classmethod
    def of(cls, state_dir: Path) -> SpanStore:
        """The store of the plane whose folder is ``state_dir``."""
        return cls(Path(state_dir) / SPANS_FILE)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: no fsync per batch; a crash may lose the last spans
        try:
            yield db
        finally:
            db.close()

    def add(self, spans: Iterable[SpanRecord], *, now: float | None = None) -> int:
        """Store ``spans`` (a span already stored is replaced); returns how many were given."""
        return self.add_rows([_row(s) for s in spans], now=now)

    def add_rows(self, rows: list[Row], *, now: float | None = None) -> int:
        """Store spans given as rows (``row_of``'s tuples); returns how many were given.

        Rows go in by statements of many rows each (``INSERT ... VALUES (...), (...)``, up to
        ``_ROWS_PER_STATEMENT``): the calling thread gives up Python's GIL once per statement
        instead of once per row (the router's thread, busy with traffic, would otherwise wait
        for it at every span), and SQLite does a third of the work that one statement per
        row, or reading the rows from JSON, costs."""
        count = len(rows)
        if not count:
            return 0
        with self._lock:
            db = self._writing()
            try:
                db.execute("BEGIN IMMEDIATE")
                done = 0
                while done < count:
                    size = next(n for n in self._sizes if n <= count - done)
                    part = rows[done:done + size]
                    db.execute(_insert(size), tuple(value for row in part for value in row))
                    done += size
                self._since_prune += count
                if self._since_prune >= _PRUNE_EVERY:
                    self._prune(db, time.time() if now is None else now)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.rollback()
                raise
        return count

    def _writing(self) -> sqlite3.Connection:
        """The connection ``add`` writes with (held under ``_lock``), opened on first use."""
        if self._writer is None:
            db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
            limit = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # 999 before SQLite 3.32
            self._sizes = tuple(n for n in _STATEMENT_SIZES if n * _COLUMNS <= limit)
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: no fsync per batch (see _connect)
            self._writer = db
        return self._writer

    def prune(self, *, now: float | None = None) -> None:
        """Apply the bounds now (``add`` does it every few hundred spans)."""
        with self._lock, self._connect() as db:
            self._prune(db, time.time() if now is None else now)

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        self._since_prune = 0
        db.execute("DELETE FROM spans WHERE start < ?", (now - self.max_age,))
        db.execute("DELETE FROM spans WHERE rowid <= (SELECT MAX(rowid) FROM spans) - ?", (self.max_spans,))

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM spans").fetchone()[0])

    def trace(self, trace_id: str) -> list[SpanRecord]:
        """The spans of ``trace_id`` (lower-case hex), earliest first; [] when unknown."""
        with self._connect() as db:
            rows = db.execute("SELECT trace_id, span_id, parent_id, name, service, start, end, status,"
                              " attributes FROM spans WHERE trace_id = ? ORDER BY start, rowid",
                              (trace_id.lower(),)).fetchall()
        return [SpanRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[8]), r[7]) for r in rows]

    def find(self, *, service: str | None = None, slot: str | None = None, release: str | None = None,
             status: str | None = None, min_ms: float | None = None, since: float | None = None,
             environment: str | None = None, limit: int = 20) -> list[TraceSummary]:
        """Traces, newest first, meeting every filter given (each by any of their spans).

        ``status``: ``error`` (span status error or HTTP status >= 500), ``ok`` (no such span
        in the trace), or an HTTP status code (``"503"``) or class (``"5xx"``). ``min_ms``: the
        trace lasted at least that long. ``since``: started at or after that epoch time.
        ``environment``: routed by that environment's router.
        """
        where, args = _span_filters(service, slot, release, environment, status, since)
        # each filter may be met by a different span of the trace (the router's has the
        # environment and slot, the service's own spans the service name)
        matching = " INTERSECT ".join(f"SELECT trace_id FROM spans WHERE {w}" for w in where or ["1"])
        query = (f"SELECT trace_id FROM spans WHERE trace_id IN ({matching})"
                 " GROUP BY trace_id ORDER BY MAX(start) DESC")
        found: list[TraceSummary] = []
        with self._connect() as db:
            for (trace_id,) in db.execute(query, args):
                summary = _summary(db, trace_id)
                if summary is None or (min_ms is not None and summary.duration_ms < min_ms):
                    continue
                if status == "ok" and summary.status == "error":
                    continue
                found.append(summary)
                if len(found) >= limit:
                    break
        found.sort(key=lambda s: s.start, reverse=True)
        return found


def _span_filters(service: str | None, slot: str | None, release: str | None, environment: str | None,
                  status: str | None, since: float | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("service", service), ("slot", slot), ("release", release),
                          ("environment", environment)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if since is not None:
        where.append("start >= ?")
        args.append(since)
    if status == "error":
        where.append("(status = 'error' OR http_status >= 500)")
    elif status is not None and status != "ok":
        code = status.lower()
        if code.endswith("xx") and code[:1].isdigit():
            where.append("http_status >= ? AND http_status < ?")
            args.extend([int(code[0]) * 100, int(code[0]) * 100 + 100])
        else:
            where.append("http_status = ?")
            args.append(int(code))
    return where, args


def valid_status(text: str) -> bool:
    """Whether ``text`` is a status filter ``find`` understands."""
    code = text.lower()
    if code in ("ok", "error"):
        return True
    if len(code) == 3 and code.endswith("xx"):
        return code[0] in "12345"
    return code.isdigit() and 100 <= int(code) <= 599


def _summary(db: sqlite3.Connection, trace_id: str) -> TraceSummary | None:
    rows = db.execute("SELECT parent_id, name, service, start, end, status, http_status, slot, release,"
                      " span_id FROM spans WHERE trace_id = ? ORDER BY start", (trace_id,)).fetchall()
    if not rows:
        return None
    ids = {r[9] for r in rows}
    root = next((r for r in rows if r[0] is None or r[0] not in ids), rows[0])
    start, end = min(r[3] for r in rows), max(r[4] for r in rows)
    failed = any(r[5] == "error" or (r[6] or 0) >= 500 for r in rows)
    slot = root[7] or next((r[7] for r in rows if r[7]), None)
    release = root[8] or next((r[8] for r in rows if r[8]), None)
    services = tuple(dict.fromkeys(r[2] for r in rows))
    return TraceSummary(trace_id, root[1], root[2], start, (end - start) * 1000.0, len(rows), services,
                        "error" if failed else "ok", slot, release)


def _row(span: SpanRecord) -> Row:
    return row_of(span.trace_id.lower(), span.span_id.lower(), span.parent_id, span.name, span.service,
                  span.start, span.end, span.status, span.attributes)


def row_of(trace_id: str, span_id: str, parent_id: str | None, name: str, service: str, start: float,
           end: float, status: str, attrs: dict[str, Any]) -> Row:
    """A span as the store's row (ids in lower-case hex, times in epoch seconds)."""
    http_status = attrs.get(HTTP_STATUS_KEY)
    slot, release = attrs.get(SLOT_KEY), attrs.get(RELEASE_KEY)
    return (trace_id, span_id, parent_id, name, service, start, end, status,
            int(http_status) if isinstance(http_status, int | float) else None,
            str(slot) if slot is not None else None, str(release) if release is not None else None,
            str(attrs[ENVIRONMENT_KEY]) if ENVIRONMENT_KEY in attrs else None,
            _encode(attrs))


def _encode(value: Any) -> str:
    """Compact JSON (orjson: a tenth of the json module's time, which counts per span)."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


@functools.lru_cache(maxsize=len(_STATEMENT_SIZES))
def _insert(rows: int) -> str:
    row = "(" + ",".join("?" * _COLUMNS) + ")"
    return "INSERT OR REPLACE INTO spans VALUES " + ",".join([row] * rows)
