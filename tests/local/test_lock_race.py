"""Real OS processes racing for one lock in one SQLite file: exactly one wins.

Each racer is a separate ``python -c`` process. It opens the store (creating the schema if
it is first), says it is ready by creating a file, waits for a "go" file, then calls
``acquire`` once and prints the outcome as JSON.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from tests.support.racing import STAY_UNTIL_ALL_TRIED, run_race

RACERS = 6

RACER = """
import json, sys, time
from pathlib import Path
from pipeline.core.errors import LockHeldError
from pipeline.core.model import ServiceRef
from pipeline.local.state.sqlite_store import open_sqlite

class Clock:
    def now(self): return time.time()
    def sleep(self, s): time.sleep(s)

db, owner, ttl, ready, go, warm, done, racers = sys.argv[1:9]
ref = ServiceRef("orders", "staging")
_, locks = open_sqlite(Path(db), Clock())
if warm == "warm":
    locks.holder(ref)  # first use (creates the schema) before the race, not during it
Path(ready).touch()
deadline = time.time() + 60
while not Path(go).exists() and time.time() < deadline:
    time.sleep(0.001)
try:
    lease = locks.acquire(ref, owner, float(ttl))
    outcome = {"won": True, "owner": lease.owner, "acquired_at": lease.acquired_at}
except LockHeldError as exc:
    outcome = {"won": False, "holder": exc.holder, "message": str(exc)}
""" + STAY_UNTIL_ALL_TRIED + """
print(json.dumps(outcome))
"""


def race(tmp: Path, owners: list[str], ttl: float, *, warm: bool = True) -> list[dict[str, Any]]:
    """Start one process per owner, release them together, return their JSON outcomes.

    ``warm``: each process uses the store once before the race; when False the processes
    also race to create the database file and its schema.
    """
    db, go = tmp / "state" / "pipeline.db", tmp / f"go-{owners[0]}"
    mode = "warm" if warm else "cold"
    racers = [
        (
            tmp / f"ready-{o}",
            [
                sys.executable, "-c", RACER, str(db), o, str(ttl), str(tmp / f"ready-{o}"), str(go), mode,
                str(tmp / f"done-{owners[0]}"), str(len(owners)),
            ],
        )
        for o in owners
    ]
    return run_race(racers, go)


def test_six_processes_race_for_one_lock_and_exactly_one_wins(tmp_path: Path) -> None:
    owners = [f"racer-{i}" for i in range(RACERS)]
    outcomes = race(tmp_path, owners, ttl=0.5)

    winners = [o for o in outcomes if o["won"]]
    assert len(winners) == 1, outcomes
    winner = winners[0]["owner"]
    losers = [o for o in outcomes if not o["won"]]
    assert len(losers) == RACERS - 1
    for loser in losers:
        assert loser["holder"] == winner
        assert winner in loser["message"] and "since" in loser["message"], loser

    # The winner never renewed and has exited: a later process takes its lease over.
    time.sleep(0.6)
    (late,) = race(tmp_path, ["latecomer"], ttl=30)
    assert late["won"] and late["owner"] == "latecomer", late


def test_processes_creating_the_database_at_once_still_have_one_winner(tmp_path: Path) -> None:
    outcomes = race(tmp_path, [f"cold-{i}" for i in range(RACERS)], ttl=30, warm=False)
    winners = {o["owner"] for o in outcomes if o["won"]}
    assert len(winners) == 1, outcomes
    assert {o["holder"] for o in outcomes if not o["won"]} == winners
