"""Safety claims on the real local platform, through the real CLI in subprocesses.

- The orchestrator is SIGKILLed mid-canary; the data plane keeps serving (no failed
  request), then ``pipeline deploy --resume`` completes the deployment, or
  ``pipeline rollback`` restores the stable release. ``pipeline local down`` leaves no
  process behind.
- A bad canary is rolled back by analysis with traffic verified back on the old slot,
  and its failed requests are bounded by the canary's share of the traffic.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from pipeline.clock import SystemClock
from pipeline.core.model import ServiceRef, Weights
from pipeline.core.state import DeploymentState, Hold, Phase
from pipeline.local.plane.lifecycle import plane_processes, read_plane
from pipeline.local.state.sqlite_store import open_sqlite
from tests.local.support.plane import SERVICE_YAML, Load, Project, get, git, version_of, wait_until

REF = ServiceRef("orders", "dev")
LONG_PAUSE_YAML = SERVICE_YAML.replace(
    "    - pause: 1s\n    - analyze: {}\n    - set_weight: 50",
    ("    - pause: 6s\n    - analyze: {}\n    - set_weight: 50"),
    1,
)


def cli(project: Project, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PIPELINE_ACTOR": "tester", "COLUMNS": "200"}
    env.pop("GITHUB_ACTOR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli.main", "--root", str(project.root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def run(project: Project, *args: str, timeout: float = 120) -> tuple[int, str]:
    proc = cli(project, *args)
    _out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def stored(project: Project) -> DeploymentState | None:
    store, _locks = open_sqlite(project.root / ".pipeline" / "state.db", SystemClock())
    return store.load(REF)


@pytest.fixture
def crash_project(project: Project) -> Iterator[Project]:
    assert run(project, "local", "up")[0] == 0
    info = read_plane(project.state_dir)
    assert info is not None
    yield project
    code, err = run(project, "local", "down")
    assert code == 0, err
    assert plane_processes(info.id) == []  # `local down` leaves no orphan


def _mid_canary(project: Project) -> tuple[str, str, Load]:
    """Deploy v1, then start v2 under load and SIGKILL the CLI during the canary's first pause."""
    code, err = run(project, "deploy", "orders", "--env", "dev")
    assert code == 0, err
    v1 = git(project.root, "rev-parse", "--short", "HEAD")
    (project.root / "services" / "orders" / "service.yaml").write_text(LONG_PAUSE_YAML)
    v2 = project.commit_change("services/orders/NOTES", "v2\n", "orders v2")
    load = Load(f"http://127.0.0.1:{project.port}/orders", workers=4).start()
    proc = cli(project, "deploy", "orders", "--env", "dev", "--ref", v2)

    def paused_at_20() -> bool:
        state = stored(project)
        return bool(
            state
            and state.release.commit == v2
            and isinstance(state.pending, Hold)
            and state.weights is not None
            and state.weights.of(state.new_slot) == 20
        )

    wait_until(paused_at_20, timeout=60, what="the canary's first pause")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(1.0)  # the plane keeps serving on its own
    return v1, v2[:7], load


def test_resume_after_sigkill_mid_canary_completes_without_a_failed_request(crash_project: Project) -> None:
    project = crash_project
    _v1, v2, load = _mid_canary(project)
    state = stored(project)
    assert state is not None and state.phase is Phase.PROGRESSING
    try:
        code, err = run(project, "deploy", "orders", "--env", "dev", "--resume")
    finally:
        load.stop()
    assert code == 0, err
    state = stored(project)
    assert state is not None and state.phase is Phase.SUCCEEDED
    assert load.failures == [], load.failures[:5]
    assert {version_of(get(f"http://127.0.0.1:{project.port}/orders")[2]) for _ in range(10)} == {v2}
    store, _ = open_sqlite(project.root / ".pipeline" / "state.db", SystemClock())
    details = [r.detail for r in store.history(REF) if r.deployment == state.id]
    assert any("traffic verified: blue 80% / green 20%" in d for d in details)
    assert any(d.startswith("resume") for d in details)
    assert details.count("deployment succeeded") == 1


def test_rollback_after_sigkill_mid_canary_restores_the_stable_release(crash_project: Project) -> None:
    project = crash_project
    v1, _v2, load = _mid_canary(project)
    try:
        code, err = run(project, "rollback", "orders", "--env", "dev", "--yes")
    finally:
        load.stop()
    assert code == 0, err
    state = stored(project)
    assert state is not None and state.phase is Phase.ROLLED_BACK
    assert state.weights == Weights.all_to(state.old_slot)
    assert load.failures == [], load.failures[:5]
    assert {version_of(get(f"http://127.0.0.1:{project.port}/orders")[2]) for _ in range(10)} == {v1}


def test_bad_canary_failures_are_bounded_by_the_canary_share(crash_project: Project) -> None:
    project = crash_project
    code, err = run(project, "deploy", "orders", "--env", "dev")
    assert code == 0, err
    v1 = git(project.root, "rev-parse", "--short", "HEAD")
    bad = project.commit_change("services/orders/fault.json", '{"error_rate": 0.6}\n', "a bad release")
    load = Load(f"http://127.0.0.1:{project.port}/orders", workers=4).start()
    try:
        code, err = run(project, "deploy", "orders", "--env", "dev", "--ref", bad)
    finally:
        load.stop()
    assert code == 6, err  # a rolled-back deployment is a failed job
    state = stored(project)
    assert state is not None and state.phase is Phase.ROLLED_BACK and "analysis failed" in state.reason
    assert state.weights == Weights.all_to(state.old_slot)  # verified back on the old slot
    new, total = state.new_slot.value, load.total
    served_by_new = load.slots[new]
    # The bad release only ever had the first step's 20% of the traffic...
    assert served_by_new <= 0.2 * total + 0.05 * total, (served_by_new, total)
    # ...and every failed request is one of those.
    assert 0 < len(load.failures) <= served_by_new
    assert {version_of(get(f"http://127.0.0.1:{project.port}/orders")[2]) for _ in range(10)} == {v1}


def test_resume_with_nothing_to_resume_is_refused(crash_project: Project) -> None:
    code, err = run(crash_project, "deploy", "orders", "--env", "dev", "--resume")
    assert code == 3, err
    assert "no deployment of orders in dev" in err
