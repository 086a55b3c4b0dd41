"""The engine works under a fenced lease: a heartbeat keeps it while an action runs, and a
run whose lease was taken over saves nothing more (``LeaseLost``, exit code 4).

The engine runs on the SQLite store (a file in tmp) with the in-memory platform fakes; a
test stage that blocks stands for any long action (a load stage, a drain).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pipeline.core.errors import LeaseLost, LockHeldError, TransientPlatformError
from pipeline.core.model import ServiceRef, StageResult
from pipeline.core.plan import Strategy
from pipeline.core.ports import Clock, Lease
from pipeline.core.state import Phase
from pipeline.core.steps import SetWeight, TestStage
from pipeline.engine import EngineSettings
from pipeline.heartbeat import Heartbeat
from pipeline.liveness import this_process
from pipeline.local.state.sqlite_lock import SqliteLockManager
from pipeline.local.state.sqlite_store import SqliteStateStore, open_sqlite
from pipeline.operations import Context, deploy
from pipeline.testing import CollectingSink, FakeClock, FakePlatform, release
from tests.unit.support.engine import REF

WITH_TEST_STAGE = Strategy(steps=(TestStage(), SetWeight(100)))


@dataclass
class BlockingStages:
    """A StageRunner whose test stage runs ``during()`` and returns its result."""

    during: Callable[[], None]

    def run(self, stage: str, endpoint: str, timeout: float) -> StageResult:
        self.during()
        return StageResult(True, f"{stage} ok")


class SkewedClock:
    """The wall clock plus ``offset`` seconds: another machine's clock."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


def context(
    path: Path, clock: Clock, stages: BlockingStages, settings: EngineSettings
) -> tuple[Context, SqliteStateStore, SqliteLockManager]:
    store, locks = open_sqlite(path, clock)
    platform = FakePlatform.create()
    ports = replace(platform.ports(), stages=stages)
    ctx = Context(
        store=store,
        locks=locks,
        clock=clock,
        sink=CollectingSink(),
        platform_for=lambda ref: ports,
        actor="alice",
        owner="run-a",
        settings=settings,
    )
    return ctx, store, locks


def test_a_run_whose_lease_was_taken_over_saves_nothing_and_the_newer_state_stays(tmp_path: Path) -> None:
    clock = FakeClock()
    newer: list[object] = []

    def meanwhile() -> None:
        # The test stage outlives the lease and no heartbeat beats (a frozen process): B
        # sees no renewal for a whole ttl of its own time, takes over and moves the state.
        clock.advance(31)
        b = SqliteLockManager(store.db, clock, identity=lambda: replace(this_process(), pid_ns="pid:[2]"))
        lease = b.acquire(REF, "run-b", ttl=30)
        state = store.load(REF)
        assert state is not None
        moved = state.evolve(phase=Phase.ROLLING_BACK, reason="taken over by run-b")
        store.commit(moved, [], fence=lease)
        newer.append(moved)

    settings = EngineSettings(lease_ttl=30, heartbeat=3600)  # the heartbeat never beats here
    ctx, store, _ = context(tmp_path / "pipeline.db", clock, BlockingStages(meanwhile), settings)
    with pytest.raises(LeaseLost, match="now held by run-b") as lost:
        deploy(ctx, REF, release("v2"), WITH_TEST_STAGE)
    assert lost.value.exit_code == 4
    assert store.load(REF) == newer[0]  # A's stage result was not written over B's state
    assert not [r for r in store.history(REF) if "test ok" in r.detail]


def test_the_heartbeat_keeps_the_lease_while_a_long_action_runs(tmp_path: Path) -> None:
    """A taker whose clock is an hour ahead sees the lease as expired and watches it for
    a ttl of its own time: the heartbeat renews meanwhile, so the taker is refused and the
    run finishes. Without a heartbeat the taker would take the lease over."""
    ttl = 3.0  # generous: the heartbeat (every 0.3 s) only has to beat once in 3 s
    outcome: list[str] = []

    def meanwhile() -> None:
        taker = SqliteLockManager(
            store.db, SkewedClock(3600), identity=lambda: replace(this_process(), pid_ns="pid:[2]")
        )
        try:
            taker.acquire(REF, "run-b", ttl=ttl)
            outcome.append("taken over")
        except LockHeldError as exc:
            outcome.append(f"refused: held by {exc.holder}")

    settings = EngineSettings(lease_ttl=ttl, heartbeat=0.3)
    ctx, store, locks = context(tmp_path / "pipeline.db", SkewedClock(0), BlockingStages(meanwhile), settings)
    state = deploy(ctx, REF, release("v2"), WITH_TEST_STAGE)
    assert outcome == ["refused: held by run-a"]
    assert state.phase is Phase.SUCCEEDED
    assert locks.holder(REF) is None  # released at the end


def test_the_heartbeat_stops_when_the_run_ends(tmp_path: Path) -> None:
    beats: list[threading.Thread] = []

    def meanwhile() -> None:
        beats.extend(t for t in threading.enumerate() if t.name == f"lease {REF.key}")

    settings = EngineSettings(lease_ttl=30, heartbeat=0.05)
    ctx, _, _ = context(tmp_path / "pipeline.db", FakeClock(), BlockingStages(meanwhile), settings)
    deploy(ctx, REF, release("v2"), WITH_TEST_STAGE)
    assert len(beats) == 1 and not beats[0].is_alive()


class FlakyLocks:
    """A LockManager whose renewals follow a script: "ok", "down" (store unreachable) or "lost"."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.renewed = threading.Event()
        self.calls = 0

    def renew(self, lease: Lease, ttl: float) -> Lease:
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if self.calls >= len(self.script):
            self.renewed.set()
        if step == "down":
            raise TransientPlatformError("state store unreachable")
        if step == "lost":
            raise LockHeldError(lease.key, "run-b", 0.0, 0.0)
        return replace(lease, version=lease.version + 1)

    def acquire(self, ref: ServiceRef, owner: str, ttl: float) -> Lease:
        raise AssertionError("not used")

    def release(self, lease: Lease) -> None:
        raise AssertionError("not used")

    def holder(self, ref: ServiceRef) -> Lease | None:
        raise AssertionError("not used")


LEASE = Lease(REF.key, "run-a", 0.0, 30.0, token=7)


def test_the_heartbeat_rides_out_an_unreachable_store_and_keeps_renewing() -> None:
    locks = FlakyLocks(["down", "down", "ok"])
    beat = Heartbeat(locks, LEASE, ttl=30, interval=0.01).start()
    try:
        assert locks.renewed.wait(timeout=30)
    finally:
        beat.stop()
    beat.check()  # not lost: fencing, not the heartbeat, guards writes while the store was away
    assert beat.lease.version >= 1 and beat.lease.token == 7


def test_the_heartbeat_that_finds_the_lease_lost_stops_and_refuses_every_later_write() -> None:
    locks = FlakyLocks(["ok", "lost"])
    beat = Heartbeat(locks, LEASE, ttl=30, interval=0.01).start()
    try:
        assert locks.renewed.wait(timeout=30)
    finally:
        beat.stop()
    with pytest.raises(LeaseLost, match="now held by run-b"):
        beat.check()
    calls = locks.calls
    with pytest.raises(LeaseLost):
        beat.renew()
    assert locks.calls == calls  # no renewal is attempted once the lease is known lost
