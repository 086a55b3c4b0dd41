"""DynamoStateStore and DynamoLockManager keep the store and lock contracts, on moto's DynamoDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.aws.dynamo_lock import DynamoLockManager
from pipeline.aws.dynamo_store import DynamoStateStore
from pipeline.aws.dynamo_table import ensure_table, table_status
from pipeline.aws.session import AwsSession
from pipeline.core.errors import LockHeldError, NotFoundError
from pipeline.core.model import Release, ServiceRef, Weights
from pipeline.core.plan import Strategy, new_deployment
from pipeline.core.ports import LockManager, Record, StateStore
from pipeline.core.state import (
    AbortRequested,
    ContinueRequested,
    DeploymentState,
    Phase,
    RollbackRequested,
    SetTraffic,
    Signal,
)
from pipeline.core.steps import SetWeight
from pipeline.owners import owner_id
from pipeline.testing import FakeClock
from tests.adapters.aws_ecs_support import new_session

REF = ServiceRef("orders", "staging")
OTHER = ServiceRef("orders", "prod")
TABLE = "pipeline-state"


def release(version: str) -> Release:
    return Release("orders", version, "sha256:" + version[-1] * 64, "c0ffee" + version)


def deployment(ref: ServiceRef = REF, deployment_id: str = "d-2") -> DeploymentState:
    strategy = Strategy(steps=(SetWeight(10),))
    previous = new_deployment(
        deployment_id="d-1",
        ref=ref,
        release=release("v1"),
        previous=None,
        strategy=strategy,
        actor="ci",
        now=1.0,
    ).evolve(phase=Phase.SUCCEEDED)
    return new_deployment(
        deployment_id=deployment_id,
        ref=ref,
        release=release("v2"),
        previous=previous,
        strategy=strategy,
        actor="ci",
        now=2.0,
    )


def record(action: str, ts: float, ref: ServiceRef = REF, kind: str = "history") -> Record:
    return Record(ts=ts, ref=ref, deployment="d-2", actor="ci", action=action, kind=kind, data={"n": ts})


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


def test_ensure_table_creates_once(session: AwsSession, clock: FakeClock) -> None:
    assert table_status(session, TABLE) == "ACTIVE"
    assert ensure_table(session, TABLE, clock) is False
    assert ensure_table(session, "another", clock) is True


def test_implements_the_ports(store: DynamoStateStore, locks: DynamoLockManager) -> None:
    as_store: StateStore = store
    as_locks: LockManager = locks
    assert as_store is store and as_locks is locks


def test_a_committed_state_loads_back_equal(store: DynamoStateStore) -> None:
    state = deployment().evolve(
        phase=Phase.PROGRESSING, weights=Weights(90, 10), pending=SetTraffic(Weights(80, 20))
    )
    store.commit(state, [])
    assert store.load(REF) == state
    assert store.load(OTHER) is None


def test_commit_replaces_the_state_and_appends_records_together(store: DynamoStateStore) -> None:
    first = deployment()
    store.commit(first, [record("start", 1.0)])
    second = first.evolve(phase=Phase.SUCCEEDED, updated_at=9.0)
    store.commit(second, [record("promote", 2.0), record("scale_down", 3.0)])
    assert store.load(REF) == second
    assert [r.action for r in store.history(REF)] == ["start", "promote", "scale_down"]
    assert store.deployments() == [second]


def test_commit_without_a_state_only_appends_records(store: DynamoStateStore) -> None:
    first = deployment()
    store.commit(first, [record("start", 1.0)])
    store.commit(None, [record("abort", 2.0, kind="audit")])
    store.commit(None, [])
    assert store.load(REF) == first
    assert [(r.action, r.kind) for r in store.history(REF)] == [("start", "history"), ("abort", "audit")]


def test_commit_is_all_or_nothing(store: DynamoStateStore) -> None:
    first = deployment()
    store.commit(first, [record("start", 1.0)])
    unstorable = Record(ts=2.0, ref=REF, deployment="d-2", actor="ci", action="x", data={"bad": object()})
    with pytest.raises(TypeError):
        store.commit(first.evolve(phase=Phase.FAILED), [record("fine", 2.0), unstorable])
    assert store.load(REF) == first
    assert [r.action for r in store.history(REF)] == ["start"]


def test_records_round_trip_every_field_and_keep_order_at_equal_times(store: DynamoStateStore) -> None:
    full = Record(
        ts=5.5,
        ref=REF,
        deployment="d-2",
        actor="alice",
        action="rollback",
        phase="rolling_back",
        version="v2",
        digest="sha256:" + "a" * 64,
        detail="error rate 7%",
        data={"rate": 0.07},
        kind="audit",
    )
    store.commit(deployment(), [full])
    store.commit(None, [record("same-time-1", 5.5), record("same-time-2", 5.5)])
    store.commit(None, [record("same-time-3", 5.5)])
    history = store.history(REF)
    assert history[0] == full
    assert [r.action for r in history[1:]] == ["same-time-1", "same-time-2", "same-time-3"]


def test_history_is_oldest_first_and_keeps_the_last_limit(store: DynamoStateStore) -> None:
    store.commit(deployment(), [record(f"a{i}", float(i)) for i in range(10)])
    store.commit(deployment(OTHER), [record("elsewhere", 99.0, OTHER)])
    assert [r.action for r in store.history(REF, limit=3)] == ["a7", "a8", "a9"]
    assert len(store.history(REF)) == 10
    assert [r.action for r in store.history(OTHER)] == ["elsewhere"]


def test_more_records_than_one_transaction_holds_are_all_kept(store: DynamoStateStore) -> None:
    store.commit(deployment(), [record(f"r{i}", float(i)) for i in range(150)])
    assert len(store.history(REF, limit=1000)) == 150
    assert store.load(REF) == deployment()


def test_records_filter_by_kind_and_action(store: DynamoStateStore) -> None:
    store.commit(
        deployment(), [record("start", 1.0), record("abort", 2.0, kind="audit"), record("abort", 3.0)]
    )
    assert [r.ts for r in store.records(REF, kind="audit")] == [2.0]
    assert [r.ts for r in store.records(REF, action="abort")] == [2.0, 3.0]
    assert [r.ts for r in store.records(REF, kind="history", action="abort")] == [3.0]
    assert store.records(OTHER) == []


def test_signals_come_out_oldest_first_and_only_once(store: DynamoStateStore) -> None:
    sent: list[Signal] = [
        ContinueRequested(now=1.0, actor="alice", full=True),
        AbortRequested(now=2.0, actor="bob"),
        RollbackRequested(now=3.0, actor="carol", reason="bad"),
    ]
    for signal in sent:
        store.send(REF, signal)
    store.send(OTHER, AbortRequested(now=4.0, actor="dave"))
    assert store.receive(REF) == sent
    assert store.receive(REF) == []
    assert store.receive(OTHER) == [AbortRequested(now=4.0, actor="dave")]


def test_concurrent_receivers_never_get_the_same_signal(store: DynamoStateStore) -> None:
    for i in range(30):
        store.send(REF, ContinueRequested(now=float(i), actor="ci"))
    got: list[float] = []
    guard = threading.Lock()

    def drain() -> None:
        for _ in range(5):
            taken = store.receive(REF)
            with guard:
                got.extend(s.now for s in taken)

    threads = [threading.Thread(target=drain) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [float(i) for i in range(30)]


def test_a_missing_table_points_at_bootstrap(aws: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        DynamoStateStore(new_session(), "nope").load(REF)
    assert "GetItem" in caught.value.message and "pipeline bootstrap" in caught.value.hint


# --- the lock ------------------------------------------------------------------------------


def test_a_held_lock_names_its_holder_and_since(locks: DynamoLockManager, clock: FakeClock) -> None:
    lease = locks.acquire(REF, "alice@ci-1:1", ttl=30)
    clock.advance(5)
    with pytest.raises(LockHeldError) as caught:
        locks.acquire(REF, "bob@ci-2:2", ttl=30)
    assert caught.value.holder == "alice@ci-1:1"
    assert caught.value.since == lease.acquired_at and caught.value.expires == lease.expires_at
    assert locks.holder(REF) == lease
    assert locks.holder(OTHER) is None


def test_an_expired_lease_is_taken_over(locks: DynamoLockManager, clock: FakeClock) -> None:
    locks.acquire(REF, "alice@ci-1:1", ttl=30)
    clock.advance(31)
    assert locks.holder(REF) is None
    taken = locks.acquire(REF, "bob@ci-2:2", ttl=30)
    assert taken.owner == "bob@ci-2:2" and taken.acquired_at == clock.now()


def test_the_same_owner_reacquires_and_keeps_since(locks: DynamoLockManager, clock: FakeClock) -> None:
    first = locks.acquire(REF, "alice@ci-1:1", ttl=30)
    clock.advance(10)
    again = locks.acquire(REF, "alice@ci-1:1", ttl=30)
    assert again.acquired_at == first.acquired_at and again.expires_at == clock.now() + 30


def test_renew_extends_and_fails_once_lost(locks: DynamoLockManager, clock: FakeClock) -> None:
    lease = locks.acquire(REF, "alice@ci-1:1", ttl=30)
    clock.advance(20)
    renewed = locks.renew(lease, ttl=30)
    assert renewed.expires_at == clock.now() + 30 and renewed.acquired_at == lease.acquired_at
    clock.advance(31)
    locks.acquire(REF, "bob@ci-2:2", ttl=30)
    with pytest.raises(LockHeldError) as caught:
        locks.renew(lease, ttl=30)
    assert caught.value.holder == "bob@ci-2:2"


def test_renew_after_release_names_nobody(locks: DynamoLockManager) -> None:
    lease = locks.acquire(REF, "alice@ci-1:1", ttl=30)
    locks.release(lease)
    with pytest.raises(LockHeldError) as caught:
        locks.renew(lease, ttl=30)
    assert caught.value.holder == "nobody"


def test_release_is_idempotent_and_never_frees_another_owner(
    locks: DynamoLockManager, clock: FakeClock
) -> None:
    alice = locks.acquire(REF, "alice@ci-1:1", ttl=30)
    locks.release(alice)
    locks.release(alice)
    bob = locks.acquire(REF, "bob@ci-2:2", ttl=30)
    locks.release(alice)
    assert locks.holder(REF) == bob


def test_a_crashed_run_on_this_host_is_taken_over_before_expiry(locks: DynamoLockManager) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    crashed = owner_id("ci").rsplit(":", 1)[0] + ":" + dead.stdout.strip()
    locks.acquire(REF, crashed, ttl=300)
    assert locks.acquire(REF, owner_id("ci"), ttl=30).owner == owner_id("ci")


# --- two OS processes race for one lock ----------------------------------------------------

RACER = """
import json, sys, time
from pathlib import Path
from pipeline.aws.dynamo_lock import DynamoLockManager
from pipeline.aws.session import AwsSession, SessionSettings
from pipeline.core.errors import LockHeldError
from pipeline.core.model import ServiceRef

class Clock:
    def now(self): return time.time()
    def sleep(self, s): time.sleep(s)

owner, keys, ready, go = sys.argv[1:5]
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
print(json.dumps(outcomes))
"""


def race(tmp: Path, keys: list[str], owners: list[str]) -> list[dict[str, dict[str, object]]]:
    """One process per owner; released together, each tries every key in order."""
    go = tmp / "go"
    procs = []
    for owner in owners:
        ready = tmp / f"ready-{owner}"
        argv = [sys.executable, "-c", RACER, owner, ",".join(keys), str(ready), str(go)]
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
        )
        procs.append((ready, proc))
    try:
        deadline = time.monotonic() + 60
        while not all(ready.exists() for ready, _ in procs):
            assert time.monotonic() < deadline, "racers did not get ready"
            assert all(p.poll() is None for _, p in procs), [p.communicate() for _, p in procs]
            time.sleep(0.01)
        go.touch()
        outcomes = []
        for _, proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            outcomes.append(json.loads(out))
        return outcomes
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


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
