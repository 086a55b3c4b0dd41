"""The local platform's lock manager: one fenced lease per (service, environment) in SQLite.

A lease is a row of the ``locks`` table of the state store's database
(``pipeline.local.state.sqlite_store.SqliteDatabase``): owner, ``acquired_at`` /
``expires_at`` (the holder's clock, for people), the fencing ``token``, the renewal
``version``, the ``ttl`` and the holder's process identity (boot id, PID namespace, pid,
start time). Every decision is taken inside one ``BEGIN IMMEDIATE`` transaction, so two
processes racing for a free lock cannot both win.

- ``acquire`` takes a free or released lease, one held by a provably dead process
  (``pipeline.liveness.holder_is_dead``), or one whose holder stopped renewing: seen
  unchanged for its ttl of the taker's own sleeping (``pipeline.liveness.Watch``). Each
  acquire writes ``token + 1``; the row is never deleted, so tokens only grow.
- ``renew`` bumps ``version`` and ``expires_at`` if the caller's owner and token still hold.
- ``check_fence`` is what ``SqliteStateStore.commit`` runs in its own transaction: a
  write under a lease whose token is no longer the row's raises ``LeaseLost``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from pipeline.core.errors import LeaseLost, LockHeldError
from pipeline.core.model import ServiceRef
from pipeline.core.ports import Clock, Lease, ProcessIdentity
from pipeline.liveness import Watch, this_process

__all__ = ["SqliteLockManager", "check_fence"]

if TYPE_CHECKING:  # the store module imports this one to build both from one file
    from pipeline.local.state.sqlite_store import SqliteDatabase

_COLUMNS = "key, owner, acquired_at, expires_at, token, version, ttl, boot_id, pid_ns, pid, start_time"


class SqliteLockManager:
    """``LockManager`` on a ``SqliteDatabase``; safe across threads and processes.

    ``identity`` names the calling process in the leases it takes (tests plant leases of
    other processes with it)."""

    def __init__(
        self, db: SqliteDatabase, clock: Clock, *, identity: Callable[[], ProcessIdentity] = this_process
    ) -> None:
        self.db = db
        self.clock = clock
        self.identity = identity

    def acquire(self, ref: ServiceRef, owner: str, ttl: float) -> Lease:
        """Take the lock of ``ref`` for ``ttl`` seconds, or raise LockHeldError naming the holder.

        May sleep (the injected clock) up to the holder's ttl while watching a lease that
        looks expired; refuses at once a lease that its holder's clock says is live.
        """
        watch = Watch()
        while True:
            with self.db.transaction(f"take the lock of {ref}") as conn:
                now = self.clock.now()  # read after BEGIN IMMEDIATE: no stale time after a busy wait
                held = _select(conn, ref.key)
                verdict = watch.verdict(held, owner, now, ttl)
                if verdict == Watch.TAKE:
                    keeps_since = held is not None and held.owner == owner
                    since = held.acquired_at if held is not None and keeps_since else now
                    token = (held.token if held is not None else 0) + 1
                    lease = Lease(ref.key, owner, since, now + ttl, token, 0, ttl, self.identity())
                    _upsert(conn, lease)
                    return lease
            assert held is not None  # TAKE covers a missing lease
            if verdict == Watch.REFUSE:
                raise LockHeldError(held.key, held.owner, held.acquired_at, held.expires_at)
            self.clock.sleep(watch.slice)
            watch.waited()

    def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend ``lease`` to ``now + ttl`` if its owner and token still hold it (even if
        expired but not yet taken over). Raises LockHeldError naming the current holder, or
        "nobody" when the lease was released, if it was lost.
        """
        with self.db.transaction(f"renew the lock of {lease.key}") as conn:
            now = self.clock.now()
            held = _select(conn, lease.key)
            if held is None or not held.owner:
                raise LockHeldError(lease.key, "nobody", lease.acquired_at, lease.expires_at)
            if (held.owner, held.token) != (lease.owner, lease.token):
                raise LockHeldError(held.key, held.owner, held.acquired_at, held.expires_at)
            renewed = replace(held, expires_at=now + ttl, version=held.version + 1, ttl=ttl)
            _upsert(conn, renewed)
        return renewed

    def release(self, lease: Lease) -> None:
        """Give the lock up if ``lease`` still holds it. Idempotent; never frees another's lease.
        The row stays (owner empty) so the next token is higher."""
        with self.db.transaction(f"release the lock of {lease.key}") as conn:
            conn.execute(
                "UPDATE locks SET owner = '', expires_at = 0 WHERE key = ? AND owner = ? AND token = ?",
                (lease.key, lease.owner, lease.token),
            )

    def holder(self, ref: ServiceRef) -> Lease | None:
        """The current lease of ``ref`` while its holder's estimate says it is live, or None."""
        with self.db.read(f"read the lock of {ref}") as conn:
            held = _select(conn, ref.key)
        live = held is not None and held.owner and held.expires_at > self.clock.now()
        return held if live else None


def check_fence(conn: sqlite3.Connection, fence: Lease) -> None:
    """Raise LeaseLost unless ``fence`` (owner and token) still holds its lock row."""
    held = _select(conn, fence.key)
    if held is None or (held.owner, held.token) != (fence.owner, fence.token):
        holder = held.owner if held is not None and held.owner else "nobody"
        raise LeaseLost(fence.key, holder, why=f"lease token {fence.token} is no longer current")


def _select(conn: sqlite3.Connection, key: str) -> Lease | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM locks WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    key, owner, acquired_at, expires_at, token, version, ttl, boot_id, pid_ns, pid, started = row
    identity = ProcessIdentity(boot_id, pid_ns, pid, started)
    return Lease(key, owner, acquired_at, expires_at, token, version, ttl, identity)


def _upsert(conn: sqlite3.Connection, lease: Lease) -> None:
    who = lease.holder
    conn.execute(
        f"INSERT INTO locks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at,"
        " expires_at = excluded.expires_at, token = excluded.token, version = excluded.version,"
        " ttl = excluded.ttl, boot_id = excluded.boot_id, pid_ns = excluded.pid_ns,"
        " pid = excluded.pid, start_time = excluded.start_time",
        (
            lease.key, lease.owner, lease.acquired_at, lease.expires_at, lease.token, lease.version,
            lease.ttl, who.boot_id, who.pid_ns, who.pid, who.start_time,
        ),
    )
