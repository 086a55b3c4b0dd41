"""DynamoStateStore and DynamoLockManager keep the store and lock contracts, on moto's DynamoDB."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.aws.session import AwsSession
from pipeline.aws.state.lock import DynamoLockManager
from pipeline.aws.state.store import DynamoStateStore
from pipeline.aws.state.table import ensure_table, table_status
from pipeline.core.errors import NotFoundError
from pipeline.core.ports import Clock, LockManager, ProcessIdentity, StateStore
from pipeline.testing import FakeClock
from tests.adapters.support.ecs import new_session
from tests.support.racing import STAY_UNTIL_ALL_TRIED, run_race
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

TABLE = "pipeline-state"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def session(aws: str, clock: FakeClock) -> AwsSession:
    session = new_session()
    ensure_table(session, TABLE, clock)
    return session


@pytest.fixture
def store(session: AwsSession) -> DynamoStateStore:
    return DynamoStateStore(session, TABLE)


@pytest.fixture
def locks(session: AwsSession, clock: FakeClock) -> DynamoLockManager:
    return DynamoLockManager(session, TABLE, clock)


@pytest.fixture
def locks_as(session: AwsSession, clock: FakeClock) -> Callable[..., DynamoLockManager]:
    """A lock manager on the same table that records another process as the holder."""

    def make(identity: ProcessIdentity, other_clock: Clock | None = None) -> DynamoLockManager:
        return DynamoLockManager(session, TABLE, other_clock or clock, identity=lambda: identity)

    return make


def test_ensure_table_creates_once(session: AwsSession, clock: FakeClock) -> None:
    assert table_status(session, TABLE) == "ACTIVE"
    assert ensure_table(session, TABLE, clock) is False
    assert ensure_table(session, "another", clock) is True


def test_implements_the_ports(store: DynamoStateStore, locks: DynamoLockManager) -> None:
    as_store: StateStore = store
    as_locks: LockManager = locks
    assert as_store is store and as_locks is locks


def test_more_records_than_one_transaction_holds_are_all_kept(store: DynamoStateStore) -> None:
    store.commit(deployment(), [record(f"r{i}", float(i)) for i in range(150)])
    assert len(store.history(REF, limit=1000)) == 150
    assert store.load(REF) == deployment()


def test_a_missing_table_points_at_bootstrap(aws: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        DynamoStateStore(new_session(), "nope").load(REF)
    assert "GetItem" in caught.value.message and "pipeline bootstrap" in caught.value.hint


# --- the lock ------------------------------------------------------------------------------


# --- two OS processes race for one lock ----------------------------------------------------

RACER = """
import json, sys, time
from pathlib import Path
from pipeline.aws.state.lock import DynamoLockManager
from pipeline.aws.session import AwsSession, SessionSettings
from pipeline.core.errors import LockHeldError
from pipeline.core.model import ServiceRef

class Clock:
    def now(self): return time.time()
    def sleep(self, s): time.sleep(s)

owner, keys, ready, go, done, racers = sys.argv[1:7]
locks = DynamoLockManager(AwsSession(SessionSettings("eu-west-1", max_attempts=1)), "pipeline-state", Clock())
locks.holder(ServiceRef("warm-up", "staging"))  # connect before the race
Path(ready).touch()
deadline = time.time() + 60
while not Path(go).exists() and time.time() < deadline:
    time.sleep(0.001)
outcomes = {}
for key in keys.split(","):  # one race per key, back to back
    try:
        lease = locks.acquire(ServiceRef(key, "staging"), owner, 30.0)
        outcomes[key] = {"won": True, "owner": lease.owner}
    except LockHeldError as exc:
        outcomes[key] = {"won": False, "holder": exc.holder, "message": exc.message}
""" + STAY_UNTIL_ALL_TRIED + """
print(json.dumps(outcomes))
"""


def race(tmp: Path, keys: list[str], owners: list[str]) -> list[dict[str, dict[str, object]]]:
    """One process per owner; released together, each tries every key in order."""
    go = tmp / "go"
    racers = [
        (
            tmp / f"ready-{o}",
            [
                sys.executable, "-c", RACER, o, ",".join(keys), str(tmp / f"ready-{o}"), str(go),
                str(tmp / "done"), str(len(owners)),
            ],
        )
        for o in owners
    ]
    return run_race(racers, go)


def test_two_processes_race_for_one_lock_and_exactly_one_wins(session: AwsSession, tmp_path: Path) -> None:
    keys = [f"svc{i}" for i in range(5)]
    by_process = race(tmp_path, keys, ["racer-a", "racer-b"])
    for key in keys:
        outcomes = [process[key] for process in by_process]
        winners = [o for o in outcomes if o["won"]]
        assert len(winners) == 1, (key, outcomes)
        (loser,) = [o for o in outcomes if not o["won"]]
        assert loser["holder"] == winners[0]["owner"]
        assert "since" in str(loser["message"])


class TestDynamoStoreContract(StateStoreContract, QueryContract):
    """The shared store contract (tests/store_contract.py) on the Dynamo store."""


class TestDynamoLockContract(LockContract, CrashTakeoverContract, FencingContract):
    """The shared lock contract (tests/store_contract.py) on the Dynamo lock manager."""
