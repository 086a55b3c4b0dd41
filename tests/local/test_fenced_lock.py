"""Real processes deploying one service through one SQLite file.

- Two deploys started together: the loser is told "locked" (exit 4) naming the holder,
  whether it loses at the lock itself or after the winner's deployment was already saved.
- A frozen run (SIGSTOP: no heartbeat, no progress) loses its lease to another run after
  a ttl; when it wakes up, its result is refused (LeaseLost, exit 4) and the newer state
  stays.

Each deployer is a ``python -c`` process on the in-memory platform fakes whose test stage
blocks until a ``finish`` file exists (a long action); it prints one JSON outcome.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.clock import SystemClock
from pipeline.core.errors import LockHeldError
from pipeline.core.model import ServiceRef
from pipeline.core.state import Phase
from pipeline.local.state.sqlite_store import open_sqlite
from tests.support.racing import run_race

REF = ServiceRef("orders", "staging")

DEPLOYER = """
import json, sys, time
from dataclasses import replace
from pathlib import Path
from pipeline.clock import SystemClock
from pipeline.core.errors import PipelineError
from pipeline.core.model import ServiceRef, StageResult
from pipeline.core.plan import Strategy
from pipeline.core.state import Timeouts
from pipeline.core.steps import SetWeight, TestStage
from pipeline.engine import EngineSettings
from pipeline.local.state.sqlite_store import open_sqlite
from pipeline.operations import Context, deploy
from pipeline.owners import owner_id
from pipeline.testing import CollectingSink, FakePlatform, release

db, name, ready, go, finish, moment, ttl = sys.argv[1:8]
ref = ServiceRef("orders", "staging")

class Stages:
    def run(self, stage, endpoint, timeout):
        Path(finish + ".in-stage").touch()
        while not Path(finish).exists():
            time.sleep(0.01)
        return StageResult(True, "test ok")

clock = SystemClock()
store, locks = open_sqlite(Path(db), clock)
locks.holder(ref)  # creates the schema before the race
ports = replace(FakePlatform.create().ports(), stages=Stages())
ctx = Context(store=store, locks=locks, clock=clock, sink=CollectingSink(), platform_for=lambda r: ports,
              actor=name, owner=owner_id(name), settings=EngineSettings(lease_ttl=float(ttl)))
strategy = Strategy(steps=(TestStage(), SetWeight(100)), timeouts=Timeouts(poll=0.05))
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.001)
if moment == "late":  # lose after the winner's deployment is saved, not at the lock
    while (s := store.load(ref)) is None or s.phase.terminal:
        time.sleep(0.005)
try:
    state = deploy(ctx, ref, release("v2"), strategy)
    print(json.dumps({"exit": 0, "name": name, "phase": state.phase.value}))
except PipelineError as exc:
    print(json.dumps({"exit": exc.exit_code, "name": name, "message": exc.message}))
    Path(finish).touch()  # the loser lets the winner's long stage end
"""


def deployer(tmp: Path, name: str, moment: str = "now", ttl: float = 30.0) -> tuple[Path, list[str]]:
    ready = tmp / f"ready-{name}"
    argv = [
        sys.executable, "-c", DEPLOYER, str(tmp / "pipeline.db"), name, str(ready),
        str(tmp / "go"), str(tmp / "finish"), moment, str(ttl),
    ]
    return ready, argv


def assert_one_answer(outcomes: list[dict[str, Any]]) -> None:
    (winner,) = [o for o in outcomes if o["exit"] == 0]
    (loser,) = [o for o in outcomes if o["exit"] != 0]
    assert winner["phase"] == "succeeded"
    assert loser["exit"] == 4, loser
    assert f"is locked: held by {winner['name']}@" in loser["message"] and "since" in loser["message"]


def test_two_deploys_started_together_one_runs_the_other_is_told_locked(tmp_path: Path) -> None:
    assert_one_answer(run_race([deployer(tmp_path, "alice"), deployer(tmp_path, "bob")], tmp_path / "go"))


def test_a_deploy_that_loses_after_the_winner_saved_its_deployment_is_told_locked(tmp_path: Path) -> None:
    outcomes = run_race([deployer(tmp_path, "alice"), deployer(tmp_path, "bob", "late")], tmp_path / "go")
    assert_one_answer(outcomes)
    assert outcomes[1]["name"] == "bob" and outcomes[1]["exit"] == 4


def test_a_frozen_run_that_lost_its_lease_saves_nothing_when_it_wakes(tmp_path: Path) -> None:
    _, argv = deployer(tmp_path, "alice", ttl=1.0)
    (tmp_path / "go").touch()
    a = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for((tmp_path / "finish.in-stage").exists, a)
        os.kill(a.pid, signal.SIGSTOP)  # frozen mid-action: its heartbeat cannot beat either
        store, locks = open_sqlite(tmp_path / "pipeline.db", SystemClock())
        lease = None
        while lease is None:  # refused while A's lease looks live; then watched for a ttl
            try:
                lease = locks.acquire(REF, "bob@takeover", ttl=30)
            except LockHeldError as exc:
                assert exc.holder.startswith("alice@")
                time.sleep(0.2)
        state = store.load(REF)
        assert state is not None
        newer = state.evolve(phase=Phase.ROLLING_BACK, reason="taken over by bob")
        store.commit(newer, [], fence=lease)
        (tmp_path / "finish").touch()
        os.kill(a.pid, signal.SIGCONT)
        out, err = a.communicate(timeout=60)
    finally:
        if a.poll() is None:
            os.kill(a.pid, signal.SIGCONT)
            a.kill()
            a.wait()
    outcome = json.loads(out)
    assert outcome["exit"] == 4, (outcome, err)
    assert "lost the lock of orders@staging: now held by bob@takeover" in outcome["message"]
    assert store.load(REF) == newer
    assert not [r for r in store.history(REF) if r.detail.startswith("test ok")]


def wait_for(condition: Any, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the deployer never reached its test stage"
        time.sleep(0.01)

