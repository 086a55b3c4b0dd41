"""The local platform's state store: deployment state, history, audit and signals in SQLite.

One database file holds everything for every service and environment of a project:

- ``deployments``: the latest ``DeploymentState`` of each (service, environment), as JSON;
- ``records``: history lines (what the engine did) and audit lines (what a person asked for);
- ``signals``: the inbox of operator signals (continue, abort, rollback), consumed once;
- ``locks``: one lease per (service, environment), see ``pipeline.local.state.sqlite_lock``.

Audit records are write-once: triggers refuse to UPDATE or DELETE a record of kind
``audit``. A commit under a lease (``fence``) checks, in its own transaction, that the
lease's fencing token still holds the lock (``check_fence``).

Every call opens its own connection, so one store object is safe to share between threads,
and WAL mode plus ``BEGIN IMMEDIATE`` transactions make the file safe to share between
processes. A writer that waits longer than ``busy_timeout`` seconds gets a
``TransientPlatformError``; any other SQLite or file-system failure is a ``PlatformError``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.core.errors import PlatformError, TransientPlatformError
from pipeline.core.model import ServiceRef
from pipeline.core.ports import Clock, Lease, Record
from pipeline.core.state import (
    DeploymentState,
    Signal,
    signal_from_json,
    signal_to_json,
)
from pipeline.local.state.sqlite_lock import SqliteLockManager, check_fence

__all__ = [
    "SCHEMA_VERSION",
    "SqliteDatabase",
    "SqliteLockManager",
    "SqliteStateStore",
    "open_sqlite",
    "signal_from_json",
    "signal_to_json",
]

SCHEMA_VERSION = 2

# Migration n (1-based) brings a database from user_version n-1 to n. Append, never edit.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS deployments (
            key TEXT PRIMARY KEY, service TEXT NOT NULL, environment TEXT NOT NULL,
            deployment TEXT NOT NULL, phase TEXT NOT NULL, updated_at REAL NOT NULL,
            state TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS records (
            id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL,
            service TEXT NOT NULL, environment TEXT NOT NULL, deployment TEXT NOT NULL,
            actor TEXT NOT NULL, action TEXT NOT NULL, kind TEXT NOT NULL, phase TEXT NOT NULL,
            version TEXT NOT NULL, digest TEXT NOT NULL, detail TEXT NOT NULL, data TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS records_by_ref ON records (service, environment, id)",
        """CREATE TABLE IF NOT EXISTS signals (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, signal TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS signals_by_key ON signals (key, seq)",
        """CREATE TABLE IF NOT EXISTS locks (
            key TEXT PRIMARY KEY, owner TEXT NOT NULL,
            acquired_at REAL NOT NULL, expires_at REAL NOT NULL)""",
    ),
    (  # 2: fenced leases (token, renewals, holder identity); write-once audit records
        "ALTER TABLE locks ADD COLUMN token INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE locks ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE locks ADD COLUMN ttl REAL NOT NULL DEFAULT 0",
        "ALTER TABLE locks ADD COLUMN boot_id TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE locks ADD COLUMN pid_ns TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE locks ADD COLUMN pid INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE locks ADD COLUMN start_time INTEGER NOT NULL DEFAULT 0",
        """CREATE TRIGGER IF NOT EXISTS audit_records_are_not_updated BEFORE UPDATE ON records
            WHEN OLD.kind = 'audit' BEGIN SELECT RAISE(ABORT, 'audit records are write-once'); END""",
        """CREATE TRIGGER IF NOT EXISTS audit_records_are_not_deleted BEFORE DELETE ON records
            WHEN OLD.kind = 'audit' BEGIN SELECT RAISE(ABORT, 'audit records are write-once'); END""",
    ),
)

_RECORD_COLUMNS = (
    "ts, service, environment, deployment, actor, action, kind, phase, version, digest, detail, data"
)


class SqliteDatabase:
    """One SQLite file: creates it (and its parent directory) and its schema on first use.

    ``transaction`` and ``read`` open a fresh connection per call; ``busy_timeout`` is in
    seconds. Both translate ``sqlite3.Error`` and ``OSError`` into ``PlatformError``.
    """

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._ready = False
        self._ready_lock = threading.Lock()

    @contextmanager
    def transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on any exception.

        ``what`` completes the sentence "state store <path> could not ..." in errors.
        """
        with self._connection(what) as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def read(self, what: str) -> Iterator[sqlite3.Connection]:
        """An autocommit connection for reads; each statement sees a consistent snapshot."""
        with self._connection(what) as conn:
            yield conn

    @contextmanager
    def _connection(self, what: str) -> Iterator[sqlite3.Connection]:
        try:
            self._ensure_schema()
            conn = self._open()
            try:
                yield conn
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            raise self._error(what, exc) from exc

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: autocommit, so BEGIN/COMMIT above are the only transactions.
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        return conn

    def _ensure_schema(self) -> None:
        with self._ready_lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._open()
            try:
                self._migrate(conn)
                self._use_wal(conn)
            finally:
                conn.close()
            self._ready = True

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL (persistent). The switch needs an exclusive lock and SQLite
        does not wait for it (no busy handler), so concurrent first uses retry here.
        """
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)  # wall-clock backoff on file contention, not domain time

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise PlatformError(
                    f"state store {self.path} has schema version {version}: "
                    f"this toolkit understands up to {SCHEMA_VERSION}",
                    hint="upgrade the pipeline toolkit, or point it at another state file",
                )
            for statements in _MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _error(self, what: str, exc: Exception) -> PlatformError:
        why = str(exc) or type(exc).__name__
        message = f"state store {self.path} could not {what}: {why}"
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in why or "busy" in why):
            return TransientPlatformError(
                message,
                hint=f"another process kept the database busy for over {self.busy_timeout:g} s; "
                "retry, and look for a stuck `pipeline` process if it keeps happening",
            )
        return PlatformError(
            message, hint=f"check that {self.path.parent} is a writable local directory with free space"
        )


class SqliteStateStore:
    """``StateStore`` on a ``SqliteDatabase``; also the queries behind ``status`` and ``history``."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    def load(self, ref: ServiceRef) -> DeploymentState | None:
        """The latest committed state of ``ref``, or None when it was never deployed."""
        with self.db.read(f"load the state of {ref}") as conn:
            row = conn.execute("SELECT state FROM deployments WHERE key = ?", (ref.key,)).fetchone()
        return DeploymentState.from_json(row[0]) if row else None

    def commit(
        self, state: DeploymentState | None, records: Sequence[Record], *, fence: Lease | None = None
    ) -> None:
        """Replace the state of ``state.ref`` (unless None) and append ``records``: all or
        nothing, and nothing at all (``LeaseLost``) when ``fence`` no longer holds the lock."""
        about = state.ref if state else (records[0].ref if records else "nothing")
        with self.db.transaction(f"save the state of {about}") as conn:
            if fence is not None:
                check_fence(conn, fence)
            if state is not None:
                conn.execute(
                    "INSERT INTO deployments (key, service, environment, deployment, phase, updated_at,"
                    " state) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                    " deployment = excluded.deployment, phase = excluded.phase,"
                    " updated_at = excluded.updated_at, state = excluded.state",
                    _state_row(state),
                )
            conn.executemany(
                f"INSERT INTO records ({_RECORD_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                [_record_row(r) for r in records],
            )

    def history(self, ref: ServiceRef, limit: int = 200) -> list[Record]:
        """The last ``limit`` records of ``ref`` (history and audit), oldest first."""
        with self.db.read(f"read the history of {ref}") as conn:
            rows = conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM (SELECT id, {_RECORD_COLUMNS} FROM records"
                " WHERE service = ? AND environment = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                (ref.service, ref.environment, max(0, limit)),
            ).fetchall()
        return [_record_from_row(row) for row in rows]

    def records(self, ref: ServiceRef, kind: str | None = None, action: str | None = None) -> list[Record]:
        """Every record of ``ref``, oldest first, optionally only of one ``kind`` and/or ``action``."""
        sql = f"SELECT {_RECORD_COLUMNS} FROM records WHERE service = ? AND environment = ?"
        params: list[str] = [ref.service, ref.environment]
        for column, value in (("kind", kind), ("action", action)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        with self.db.read(f"read the records of {ref}") as conn:
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        return [_record_from_row(row) for row in rows]

    def deployments(self) -> list[DeploymentState]:
        """The latest state of every (service, environment), sorted by service then environment."""
        with self.db.read("list deployments") as conn:
            rows = conn.execute("SELECT state FROM deployments ORDER BY service, environment").fetchall()
        return [DeploymentState.from_json(row[0]) for row in rows]

    def send(self, ref: ServiceRef, signal: Signal) -> None:
        """Queue ``signal`` for the engine running ``ref``. Not idempotent: each call queues one."""
        with self.db.transaction(f"queue a signal for {ref}") as conn:
            conn.execute("INSERT INTO signals (key, signal) VALUES (?, ?)", (ref.key, signal_to_json(signal)))

    def receive(self, ref: ServiceRef) -> list[Signal]:
        """Take and delete the queued signals of ``ref``, oldest first; each is returned once."""
        with self.db.transaction(f"take the signals of {ref}") as conn:
            rows = conn.execute(
                "SELECT seq, signal FROM signals WHERE key = ? ORDER BY seq", (ref.key,)
            ).fetchall()
            if not rows:
                return []
            conn.execute("DELETE FROM signals WHERE key = ? AND seq <= ?", (ref.key, rows[-1][0]))
            return [signal_from_json(row[1]) for row in rows]


def open_sqlite(
    path: Path, clock: Clock, *, busy_timeout: float = 5.0
) -> tuple[SqliteStateStore, SqliteLockManager]:
    """The state store and the lock manager of one SQLite file (created on first use)."""
    db = SqliteDatabase(path, busy_timeout=busy_timeout)
    return SqliteStateStore(db), SqliteLockManager(db, clock)


def _state_row(state: DeploymentState) -> tuple[object, ...]:
    ref = state.ref
    row = (ref.key, ref.service, ref.environment, state.id, state.phase.value, state.updated_at)
    return (*row, state.to_json())


def _record_row(r: Record) -> tuple[object, ...]:
    who = (r.ts, r.ref.service, r.ref.environment, r.deployment, r.actor, r.action, r.kind)
    return (*who, r.phase, r.version, r.digest, r.detail, json.dumps(r.data, sort_keys=True))


def _record_from_row(row: Sequence[Any]) -> Record:
    ts, service, environment, deployment, actor, action, kind, phase, version, digest, detail, data = row
    return Record(
        ts=ts,
        ref=ServiceRef(service, environment),
        deployment=deployment,
        actor=actor,
        action=action,
        phase=phase,
        version=version,
        digest=digest,
        detail=detail,
        data=json.loads(data),
        kind=kind,
    )
