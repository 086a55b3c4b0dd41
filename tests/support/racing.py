"""Run OS processes that race: start them, wait until each is ready, release them together.

Each racer is ``(ready_file, argv)``: the process touches ``ready_file`` once set up, then
waits for the shared ``go`` file, races, and prints one JSON document on stdout.

A racer that won a lock must stay alive until every racer has tried: a lock whose holder
process is gone from this machine is rightly taken over at once. Racers do so by running
``STAY_UNTIL_ALL_TRIED`` (Python source) after racing, with ``done`` (a folder) and
``racers`` (how many) defined.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any


def run_race(racers: list[tuple[Path, list[str]]], go: Path, timeout: float = 60) -> list[Any]:
    """The racers' JSON outcomes, in order; no process is left running on any way out."""
    procs = [
        (
            ready,
            subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
            ),
        )
        for ready, argv in racers
    ]
    try:
        deadline = time.monotonic() + timeout
        while not all(ready.exists() for ready, _ in procs):
            assert time.monotonic() < deadline, "racers did not get ready"
            assert all(p.poll() is None for _, p in procs), [p.communicate() for _, p in procs]
            time.sleep(0.01)
        go.touch()
        outcomes = []
        for _, proc in procs:
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err
            outcomes.append(json.loads(out))
        return outcomes
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


STAY_UNTIL_ALL_TRIED = """
import os as _os, time as _time
_os.makedirs(done, exist_ok=True)
open(_os.path.join(done, str(_os.getpid())), "w").close()
_until = _time.time() + 60
while len(_os.listdir(done)) < int(racers) and _time.time() < _until:
    _time.sleep(0.005)
"""
