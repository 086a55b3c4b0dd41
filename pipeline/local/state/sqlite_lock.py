"""The local platform's lock manager: one lease per (service, environment) in SQLite.

A lease is a row ``(key, owner, acquired_at, expires_at)`` in the ``locks`` table of the
state store's database (``pipeline.local.state.sqlite_store.SqliteDatabase``). Every decision is
taken inside one ``BEGIN IMMEDIATE`` transaction, so two processes racing for a free lock
cannot both win. Times come from the injected clock, in epoch seconds.

An owner string of the form ``anything@HOST:PID`` lets a run on the same machine take over
the lease of a run that crashed: when HOST is this machine's hostname and no process PID
exists, the lease is taken over at once instead of after it expires.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from pipeline.core.errors import LockHeldError
from pipeline.core.model import ServiceRef
from pipeline.core.ports import Clock, Lease
from pipeline.owners import crashed_on_this_host

__all__ = ["SqliteLockManager"]

if TYPE_CHECKING:  # the store module imports this one to build both from one file
    from pipeline.local.state.sqlite_store import SqliteDatabase


class SqliteLockManager:
    """``LockManager`` on a ``SqliteDatabase``; safe across threads and processes."""

    def __init__(self, db: SqliteDatabase, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def acquire(self, ref: ServiceRef, owner: str, ttl: float) -> Lease:
        """Take the lock of ``ref`` for ``ttl`` seconds, or raise LockHeldError naming the holder.

        Taken when free, expired (``expires_at <= now``), held by a crashed process of this
        machine (see the module docstring), or already held by ``owner`` — then the lease is
        refreshed and keeps its ``acquired_at``.
        """
        with self.db.transaction(f"take the lock of {ref}") as conn:
            now = self.clock.now()  # read after BEGIN IMMEDIATE: no stale time after a busy wait
            held = _select(conn, ref.key)
            if held is not None and not _may_take(held, owner, now):
                raise LockHeldError(held.key, held.owner, held.acquired_at, held.expires_at)
            keeps_since = held is not None and held.owner == owner and held.expires_at > now
            since = held.acquired_at if held is not None and keeps_since else now
            lease = Lease(ref.key, owner, since, now + ttl)
            _upsert(conn, lease)
        return lease

    def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend ``lease`` to ``now + ttl`` if ``lease.owner`` still holds it (even if expired
        but not yet taken over). Raises LockHeldError naming the current holder, or "nobody"
        when the lease was released, if it was lost.
        """
        with self.db.transaction(f"renew the lock of {lease.key}") as conn:
            now = self.clock.now()
            held = _select(conn, lease.key)
            if held is None:
                raise LockHeldError(lease.key, "nobody", lease.acquired_at, lease.expires_at)
            if held.owner != lease.owner:
                raise LockHeldError(held.key, held.owner, held.acquired_at, held.expires_at)
            renewed = Lease(held.key, held.owner, held.acquired_at, now + ttl)
            _upsert(conn, renewed)
        return renewed

    def release(self, lease: Lease) -> None:
        """Give the lock up if ``lease.owner`` holds it. Idempotent; never frees another's lease."""
        with self.db.transaction(f"release the lock of {lease.key}") as conn:
            conn.execute("DELETE FROM locks WHERE key = ? AND owner = ?", (lease.key, lease.owner))

    def holder(self, ref: ServiceRef) -> Lease | None:
        """The current unexpired lease of ``ref``, or None."""
        with self.db.read(f"read the lock of {ref}") as conn:
            held = _select(conn, ref.key)
        return held if held is not None and held.expires_at > self.clock.now() else None


def _may_take(held: Lease, owner: str, now: float) -> bool:
    return held.expires_at <= now or held.owner == owner or crashed_on_this_host(held.owner)


def _select(conn: sqlite3.Connection, key: str) -> Lease | None:
    row = conn.execute(
        "SELECT key, owner, acquired_at, expires_at FROM locks WHERE key = ?", (key,)
    ).fetchone()
    return Lease(row[0], row[1], row[2], row[3]) if row else None


def _upsert(conn: sqlite3.Connection, lease: Lease) -> None:
    conn.execute(
        "INSERT INTO locks (key, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET owner = excluded.owner,"
        " acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
        (lease.key, lease.owner, lease.acquired_at, lease.expires_at),
    )
