"""The SQLite state store and lock manager keep the StateStore and LockManager contracts."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.core.errors import LockHeldError, PlatformError, TransientPlatformError
from pipeline.core.ports import Clock, LockManager, ProcessIdentity, StateStore
from pipeline.local.state.sqlite_lock import SqliteLockManager
from pipeline.local.state.sqlite_store import _MIGRATIONS, SCHEMA_VERSION, SqliteStateStore, open_sqlite
from pipeline.testing import FakeClock
from tests.support.store_contract import (
    REF,
    CrashTakeoverContract,
    FencingContract,
    LockContract,
    QueryContract,
    StateStoreContract,
    deployment,
    record,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stores(tmp_path: Path, clock: FakeClock) -> tuple[SqliteStateStore, SqliteLockManager]:
    return open_sqlite(tmp_path / "state" / "pipeline.db", clock)


@pytest.fixture
def locks_as(
    stores: tuple[SqliteStateStore, SqliteLockManager], clock: FakeClock
) -> Callable[..., SqliteLockManager]:
    """A lock manager on the same file that records another process as the holder."""

    def make(identity: ProcessIdentity, other_clock: Clock | None = None) -> SqliteLockManager:
        return SqliteLockManager(stores[1].db, other_clock or clock, identity=lambda: identity)

    return make


@pytest.fixture
def store(stores: tuple[SqliteStateStore, SqliteLockManager]) -> SqliteStateStore:
    return stores[0]


@pytest.fixture
def locks(stores: tuple[SqliteStateStore, SqliteLockManager]) -> SqliteLockManager:
    return stores[1]


# --- state, records, signals --------------------------------------------------------


def test_creates_the_directory_and_a_versioned_wal_schema(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "a" / "b" / "pipeline.db"
    store, _ = open_sqlite(path, clock)
    assert store.load(REF) is None
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"deployments", "records", "signals", "locks"} <= tables
    conn.close()


def test_implements_the_state_store_and_lock_manager_ports(
    store: SqliteStateStore, locks: SqliteLockManager
) -> None:
    state_store: StateStore = store  # checked by mypy --strict
    lock_manager: LockManager = locks
    assert (state_store, lock_manager) == (store, locks)


def test_a_busy_database_is_a_transient_platform_error(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "pipeline.db"
    store, _ = open_sqlite(path, clock, busy_timeout=0.05)
    store.load(REF)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(
            TransientPlatformError, match=r"could not save the state of orders@staging"
        ) as err:
            store.commit(deployment(), [])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert isinstance(err.value.__cause__, sqlite3.OperationalError)
    assert err.value.hint


def test_an_unusable_path_is_a_platform_error(tmp_path: Path, clock: FakeClock) -> None:
    (tmp_path / "file").write_text("not a directory")
    store, _ = open_sqlite(tmp_path / "file" / "pipeline.db", clock)
    with pytest.raises(PlatformError, match=r"state store .* could not load the state") as err:
        store.load(REF)
    assert err.value.__cause__ is not None


def test_a_newer_schema_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "pipeline.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store, _ = open_sqlite(path, clock)
    with pytest.raises(PlatformError, match="schema version"):
        store.load(REF)


def test_audit_rows_are_write_once_and_history_rows_are_not(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "pipeline.db"
    store, _ = open_sqlite(path, clock)
    store.commit(deployment(), [record("approve", 1.0, kind="audit"), record("start", 2.0)])
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in ("UPDATE records SET actor = 'mallory' WHERE kind = 'audit'",
                          "DELETE FROM records WHERE kind = 'audit'"):
            with pytest.raises(sqlite3.IntegrityError, match="audit records are write-once"):
                conn.execute(statement)
        conn.execute("UPDATE records SET detail = 'history may be corrected' WHERE kind = 'history'")
    finally:
        conn.close()
    assert [(r.action, r.actor) for r in store.records(REF, kind="audit")] == [("approve", "ci")]


def test_a_version_1_database_is_upgraded_and_its_lease_fenced_from_then_on(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "pipeline.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _MIGRATIONS[0]:  # the schema as version 1 of the toolkit created it
        conn.execute(statement)
    conn.execute("INSERT INTO locks VALUES ('orders@staging', 'old@host:1', ?, ?)", (clock.t, clock.t + 5))
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    store, locks = open_sqlite(path, clock)
    with pytest.raises(LockHeldError, match="held by old@host:1"):
        locks.acquire(REF, "run-a", ttl=10)
    clock.t += 6  # expired by its holder's estimate: watched for a ttl, then taken
    lease = locks.acquire(REF, "run-a", ttl=10)
    assert lease.token == 1
    store.commit(deployment(), [], fence=lease)
    assert store.load(REF) == deployment()


# --- locks ----------------------------------------------------------------------------


def test_threads_racing_for_one_lock_have_one_winner(locks: SqliteLockManager) -> None:
    barrier = threading.Barrier(8)
    winners: list[str] = []
    holders: set[str] = set()

    def race(i: int) -> None:
        barrier.wait()
        try:
            winners.append(locks.acquire(REF, f"t{i}", ttl=60).owner)
        except LockHeldError as exc:
            holders.add(exc.holder)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert holders == set(winners)


class TestSqliteStoreContract(StateStoreContract, QueryContract):
    """The shared store contract (tests/support/store_contract.py) on the Sqlite store."""


class TestSqliteLockContract(LockContract, CrashTakeoverContract, FencingContract):
    """The shared lock contract (tests/support/store_contract.py) on the Sqlite lock manager."""
