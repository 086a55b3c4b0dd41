"""The StateStore and LockManager contracts, written once, run against every implementation.

A test module subclasses the contract classes (``class TestSqlite(StateStoreContract)``)
and provides the fixtures ``store``, ``locks`` and ``clock`` (a clock with a settable
``t``, such as ``pipeline.testing.FakeClock``). The SQLite store (unit tier), the DynamoDB
store (adapters tier, moto) and the in-memory fake all run the same assertions.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from pipeline.core.errors import LeaseLost, LockHeldError
from pipeline.core.model import Release, ServiceRef, Weights
from pipeline.core.plan import Strategy, new_deployment
from pipeline.core.ports import ProcessIdentity, Record
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
from pipeline.liveness import this_process
from pipeline.owners import owner_id
from pipeline.testing import FakeClock

REF = ServiceRef("orders", "staging")
OTHER = ServiceRef("orders", "prod")


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


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid no longer names a process
    return child.pid


class StateStoreContract:
    """``load``, ``commit``, ``history``, ``send`` and ``receive``."""

    def test_a_committed_state_loads_back_equal(self, store: Any) -> None:
        state = deployment().evolve(
            phase=Phase.PROGRESSING, weights=Weights(90, 10), pending=SetTraffic(Weights(80, 20))
        )
        store.commit(state, [])
        assert store.load(REF) == state
        assert store.load(OTHER) is None

    def test_commit_replaces_the_state_and_appends_records_together(self, store: Any) -> None:
        first = deployment()
        store.commit(first, [record("start", 1.0)])
        second = first.evolve(phase=Phase.SUCCEEDED, updated_at=9.0)
        store.commit(second, [record("promote", 2.0), record("scale_down", 3.0)])
        assert store.load(REF) == second
        assert [r.action for r in store.history(REF)] == ["start", "promote", "scale_down"]

    def test_commit_without_a_state_only_appends_records(self, store: Any) -> None:
        first = deployment()
        store.commit(first, [record("start", 1.0)])
        store.commit(None, [record("abort", 2.0, kind="audit")])
        store.commit(None, [])
        assert store.load(REF) == first
        assert [(r.action, r.kind) for r in store.history(REF)] == [("start", "history"), ("abort", "audit")]

    def test_records_round_trip_every_field(self, store: Any) -> None:
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
        assert store.history(REF) == [full]

    def test_records_at_equal_times_keep_their_commit_order(self, store: Any) -> None:
        store.commit(deployment(), [record("same-time-1", 5.5), record("same-time-2", 5.5)])
        store.commit(None, [record("same-time-3", 5.5)])
        assert [r.action for r in store.history(REF)] == ["same-time-1", "same-time-2", "same-time-3"]

    def test_history_is_oldest_first_and_keeps_the_last_limit(self, store: Any) -> None:
        store.commit(deployment(), [record(f"a{i}", float(i)) for i in range(10)])
        store.commit(deployment(OTHER), [record("elsewhere", 99.0, OTHER)])
        assert [r.action for r in store.history(REF, limit=3)] == ["a7", "a8", "a9"]
        assert len(store.history(REF)) == 10
        assert [r.action for r in store.history(OTHER)] == ["elsewhere"]

    def test_signals_come_out_oldest_first_and_only_once(self, store: Any) -> None:
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

    def test_concurrent_receivers_never_get_the_same_signal(self, store: Any) -> None:
        for i in range(30):
            store.send(REF, ContinueRequested(now=float(i), actor="ci"))
        got: list[float] = []
        lock = threading.Lock()

        def drain() -> None:
            for _ in range(15):
                taken = store.receive(REF)
                with lock:
                    got.extend(s.now for s in taken)

        threads = [threading.Thread(target=drain) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # A receiver that loses a conditional-write race takes nothing that round; on a slow
        # machine the bounded rounds can end with signals left over, so take those last.
        # What matters: no signal twice, none lost.
        got.extend(s.now for s in store.receive(REF))
        assert sorted(got) == [float(i) for i in range(30)]


class QueryContract:
    """``deployments()`` and ``records()``: what ``pipeline status`` and audits read."""

    def test_commit_is_all_or_nothing(self, store: Any) -> None:
        first = deployment()
        store.commit(first, [record("start", 1.0)])
        unstorable = Record(ts=2.0, ref=REF, deployment="d-2", actor="ci", action="x", data={"bad": object()})
        with pytest.raises(TypeError):
            store.commit(first.evolve(phase=Phase.FAILED), [record("fine", 2.0), unstorable])
        assert store.load(REF) == first
        assert [r.action for r in store.history(REF)] == ["start"]

    def test_deployments_lists_the_latest_state_of_every_ref(self, store: Any) -> None:
        store.commit(deployment(OTHER, "p-1"), [])
        store.commit(deployment(REF, "s-1"), [])
        store.commit(deployment(REF, "s-2"), [])
        assert sorted((s.ref.key, s.id) for s in store.deployments()) == [
            (OTHER.key, "p-1"),
            (REF.key, "s-2"),
        ]

    def test_records_filter_by_kind_and_action(self, store: Any) -> None:
        rows = [record("start", 1.0), record("abort", 2.0, kind="audit"), record("abort", 3.0)]
        store.commit(deployment(), rows)
        assert [r.ts for r in store.records(REF, kind="audit")] == [2.0]
        assert [r.ts for r in store.records(REF, action="abort")] == [2.0, 3.0]
        assert [r.ts for r in store.records(REF, kind="history", action="abort")] == [3.0]
        assert store.records(OTHER) == []


class LockContract:
    """``acquire``, ``renew``, ``release`` and ``holder``, with an injected clock."""

    def test_a_held_lock_names_its_holder_and_since(self, locks: Any, clock: Any) -> None:
        lease = locks.acquire(REF, "run-a", ttl=60)
        assert (lease.key, lease.owner, lease.acquired_at, lease.expires_at) == (
            "orders@staging",
            "run-a",
            clock.t,
            clock.t + 60,
        )
        with pytest.raises(LockHeldError, match="held by run-a since") as err:
            locks.acquire(REF, "run-b", ttl=60)
        assert (err.value.holder, err.value.since, err.value.expires) == ("run-a", clock.t, clock.t + 60)
        assert locks.holder(REF) == lease
        assert locks.acquire(OTHER, "run-b", ttl=60).owner == "run-b"

    def test_an_expired_lease_is_taken_over(self, locks: Any, clock: Any) -> None:
        locks.acquire(REF, "run-a", ttl=10)
        clock.t += 9.9
        with pytest.raises(LockHeldError):
            locks.acquire(REF, "run-b", ttl=10)
        clock.t += 0.1
        assert locks.holder(REF) is None
        taken = locks.acquire(REF, "run-b", ttl=10)
        assert (taken.owner, taken.acquired_at) == ("run-b", clock.t)
        assert locks.holder(REF) == taken

    def test_the_same_owner_reacquires_and_keeps_since(self, locks: Any, clock: Any) -> None:
        first = locks.acquire(REF, "run-a", ttl=10)
        clock.t += 5
        again = locks.acquire(REF, "run-a", ttl=10)
        assert again.acquired_at == first.acquired_at
        assert again.expires_at == clock.t + 10

    def test_renew_extends_a_held_lease(self, locks: Any, clock: Any) -> None:
        lease = locks.acquire(REF, "run-a", ttl=10)
        clock.t += 8
        renewed = locks.renew(lease, ttl=10)
        assert (renewed.acquired_at, renewed.expires_at) == (lease.acquired_at, clock.t + 10)
        clock.t += 9
        with pytest.raises(LockHeldError):
            locks.acquire(REF, "run-b", ttl=10)

    def test_renew_after_the_lease_was_lost_raises(self, locks: Any, clock: Any) -> None:
        lease = locks.acquire(REF, "run-a", ttl=10)
        clock.t += 11
        locks.acquire(REF, "run-b", ttl=10)
        with pytest.raises(LockHeldError, match="held by run-b") as err:
            locks.renew(lease, ttl=10)
        assert err.value.holder == "run-b"

    def test_renew_after_release_raises(self, locks: Any) -> None:
        lease = locks.acquire(REF, "run-a", ttl=10)
        locks.release(lease)
        with pytest.raises(LockHeldError, match="held by nobody"):
            locks.renew(lease, ttl=10)

    def test_release_is_idempotent_and_never_frees_another_owner(self, locks: Any) -> None:
        lease = locks.acquire(REF, "run-a", ttl=10)
        locks.release(lease)
        locks.release(lease)
        assert locks.holder(REF) is None
        theirs = locks.acquire(REF, "run-b", ttl=10)
        locks.release(lease)
        assert locks.holder(REF) == theirs


class CrashTakeoverContract:
    """A lease whose holder process is provably gone is taken over at once; a holder that may
    be alive (another PID namespace, another boot, a live pid) only when its lease expires.

    Needs the fixture ``locks_as(identity, clock=None)``: a lock manager on the same store
    that records ``identity`` as the holder process (and uses ``clock``, default the shared
    one): how a test plants the lease of another process.
    """

    def test_a_crashed_run_on_this_host_is_taken_over_before_expiry(self, locks: Any, locks_as: Any) -> None:
        crashed = replace(this_process(), pid=dead_pid())
        planted = locks_as(crashed).acquire(REF, "ci@crashed", ttl=3600)
        taken = locks.acquire(REF, owner_id("ci"), ttl=60)
        assert taken.owner == owner_id("ci")
        assert taken.token > planted.token

    def test_a_reused_pid_is_a_dead_holder(self, locks: Any, locks_as: Any) -> None:
        # Our own pid, but the holder it names started at another time: pid reuse.
        reused = replace(this_process(), start_time=this_process().start_time + 1)
        locks_as(reused).acquire(REF, "ci@before-reboot-of-pid", ttl=3600)
        assert locks.acquire(REF, "ci@now", ttl=60).owner == "ci@now"

    def test_a_holder_that_may_be_alive_is_not_taken_before_its_lease_expires(
        self, locks: Any, locks_as: Any
    ) -> None:
        me, gone = this_process(), dead_pid()
        # The owner names this host and a pid that does not exist here, as a run in another
        # container with the same host name would: the name alone must not condemn it.
        owner = f"ci@{socket.gethostname()}:{gone}"
        for name, holder in {
            "alive-here": me,
            "other-pid-namespace": replace(me, pid_ns="pid:[1]", pid=gone),
            "other-boot": replace(me, boot_id="another-boot", pid=gone),
            "no-identity": ProcessIdentity(pid=gone),
        }.items():
            ref = ServiceRef("orders", name)
            locks_as(holder).acquire(ref, owner, ttl=3600)
            with pytest.raises(LockHeldError, match=f"held by {owner} since"):
                locks.acquire(ref, "ci@elsewhere", ttl=60)


class FencingContract:
    """Every acquire takes a higher fencing token; a commit under a lost lease writes nothing.

    Needs ``store`` and ``locks`` on the same backing store, ``clock`` and ``locks_as``
    (see ``CrashTakeoverContract``)."""

    def test_every_acquire_and_takeover_takes_a_higher_token(self, locks: Any, clock: Any) -> None:
        first = locks.acquire(REF, "run-a", ttl=10)
        locks.release(first)
        second = locks.acquire(REF, "run-b", ttl=10)
        clock.t += 11
        third = locks.acquire(REF, "run-c", ttl=10)
        assert first.token < second.token < third.token
        renewed = locks.renew(third, ttl=10)
        assert (renewed.token, renewed.version) == (third.token, third.version + 1)

    def test_a_commit_under_the_held_lease_is_saved(self, store: Any, locks: Any) -> None:
        lease = locks.acquire(REF, "run-a", ttl=10)
        store.commit(deployment(), [record("start", 1.0)], fence=lease)
        store.commit(None, [record("note", 2.0)], fence=locks.renew(lease, ttl=10))
        assert store.load(REF) == deployment()
        assert [r.action for r in store.history(REF)] == ["start", "note"]

    def test_a_stale_writer_is_refused_and_the_newer_state_stays(
        self, store: Any, locks: Any, clock: Any
    ) -> None:
        a = locks.acquire(REF, "run-a", ttl=10)
        store.commit(deployment(), [record("a-start", 1.0)], fence=a)
        clock.t += 11  # A stops renewing (a long action, a paused process) ...
        b = locks.acquire(REF, "run-b", ttl=10)  # ... and B takes over
        newer = deployment().evolve(phase=Phase.ROLLING_BACK, reason="b decided")
        store.commit(newer, [record("b-rollback", 30.0)], fence=b)
        with pytest.raises(LeaseLost, match="now held by run-b") as lost:
            store.commit(deployment().evolve(phase=Phase.SUCCEEDED), [record("a-late", 31.0)], fence=a)
        assert lost.value.exit_code != 0
        assert store.load(REF) == newer
        assert [r.action for r in store.history(REF)] == ["a-start", "b-rollback"]

    def test_a_released_lease_fences_nothing(self, store: Any, locks: Any) -> None:
        lease = locks.acquire(REF, "run-a", ttl=10)
        locks.release(lease)
        with pytest.raises(LeaseLost, match="held by nobody"):
            store.commit(deployment(), [], fence=lease)
        assert store.load(REF) is None

    def test_expiry_is_judged_on_the_takers_clock_not_the_holders(self, locks_as: Any) -> None:
        """A taker whose clock runs an hour ahead of the holder's sees its lease as expired;
        it still waits a whole ttl of its own time, and backs off when the holder renews."""
        holder_clock, taker_clock = FakeClock(1_000.0), HookClock(1_000.0 + 3600)
        holder = locks_as(this_process(), holder_clock)
        taker = locks_as(replace(this_process(), pid_ns="pid:[2]"), taker_clock)
        lease = holder.acquire(REF, "run-a", ttl=10)
        taker_clock.on_sleep = lambda: holder.renew(lease, ttl=10)  # renewals while it watches
        with pytest.raises(LockHeldError, match="held by run-a"):
            taker.acquire(REF, "run-b", ttl=10)
        taker_clock.on_sleep = lambda: None  # the holder stops renewing: taken after one ttl
        start = taker_clock.t
        assert taker.acquire(REF, "run-b", ttl=10).owner == "run-b"
        assert taker_clock.t - start >= 10

    def test_a_lease_live_by_the_holders_clock_is_refused_at_once(self, locks_as: Any) -> None:
        holder_clock, taker_clock = HookClock(5_000.0), HookClock(1_000.0)  # taker an hour behind
        locks_as(this_process(), holder_clock).acquire(REF, "run-a", ttl=10)
        taker = locks_as(replace(this_process(), pid_ns="pid:[2]"), taker_clock)
        with pytest.raises(LockHeldError, match="held by run-a"):
            taker.acquire(REF, "run-b", ttl=10)
        assert taker_clock.t == 1_000.0  # no wait: "locked" is the answer, naming the holder


class HookClock(FakeClock):
    """A fake clock that runs ``on_sleep`` after every sleep (another process acting meanwhile)."""

    def __init__(self, start: float) -> None:
        super().__init__(start)
        self.on_sleep: Callable[[], object] = lambda: None

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.on_sleep()
