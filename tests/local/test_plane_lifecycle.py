"""``pipeline local up | down | status`` with a real plane process: idempotent ``up``, a stale
``plane.json`` replaced, orphans of a killed plane swept, state restored after ``down``/``up``,
and ``down`` leaving no process behind (checked with psutil)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from pipeline.cli.local import local
from pipeline.core.model import Release, Slot, Weights
from pipeline.local.plane.lifecycle import plane_processes, read_plane, stop_plane
from tests.local.support.plane import Adapters, Project, get, make_adapters, version_of, wait_until


@pytest.fixture
def cli(project: Project) -> Iterator[CliRunner]:
    """A CLI runner; whatever plane the test leaves running is stopped afterwards."""
    yield CliRunner()
    info = read_plane(project.state_dir)
    stop_plane(project.state_dir)
    if info is not None:
        assert plane_processes(info.id) == []


def _invoke(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(local, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _deploy_blue(project: Project) -> tuple[Adapters, Release]:
    a = make_adapters(project)
    release = a.registry.resolve("orders")
    a.compute.provision(Slot.BLUE, release)
    a.router.set_weights(Weights(100, 0))
    wait_until(lambda: a.compute.health(Slot.BLUE, release).ready, 30, "blue ready")
    return a, release


def test_up_is_idempotent_status_shows_the_plane_and_down_leaves_no_orphans(
    project: Project, cli: CliRunner
) -> None:
    root = str(project.root)
    out = _invoke(cli, "up", "--root", root)
    assert "local plane started" in out and f"dev: http://127.0.0.1:{project.port}" in out
    info = read_plane(project.state_dir)
    assert info is not None and psutil.pid_exists(info.pid)
    assert "no rule" in json.loads(get(f"http://127.0.0.1:{project.port}/orders")[2])["error"]
    assert "already running" in _invoke(cli, "up", "--root", root)
    assert read_plane(project.state_dir) == info  # the same process, reused

    _, release = _deploy_blue(project)
    status = json.loads(_invoke(cli, "status", "--root", root, "--json"))
    orders = status["environments"]["dev"]["services"]["orders"]
    assert orders["weights"] == {"blue": 100, "green": 0}
    blue = orders["slots"]["blue"]
    assert blue["version"] == release.version and blue["healthy"] == 2
    table = _invoke(cli, "status", "--root", root)
    assert "blue 100% / green 0%" in table and "blue (test route)" in table
    assert table.count("healthy, pid") == 2

    pids = [info.pid, *(int(r["pid"]) for r in blue["replicas"])]
    assert len(plane_processes(info.id)) == 3  # the plane and two replicas carry its id
    assert "local plane stopped" in _invoke(cli, "down", "--root", root)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    assert plane_processes(info.id) == []
    assert not (project.state_dir / "plane.json").exists()
    assert "no local plane was running" in _invoke(cli, "down", "--root", root)
    assert json.loads(_invoke(cli, "status", "--root", root, "--json")) == {"running": False}


def test_a_killed_plane_is_replaced_by_up_and_its_orphans_are_swept(project: Project, cli: CliRunner) -> None:
    _invoke(cli, "up", "--root", str(project.root))
    _deploy_blue(project)
    old = read_plane(project.state_dir)
    assert old is not None
    orphans = [p for p in plane_processes(old.id) if p.pid != old.pid]
    assert len(orphans) == 2
    os.kill(old.pid, signal.SIGKILL)  # plane.json is now stale; its replicas live on
    wait_until(lambda: not any(p.pid == old.pid for p in plane_processes(old.id)), 10, "plane dead")
    assert all(p.is_running() for p in orphans)

    assert "local plane started" in _invoke(cli, "up", "--root", str(project.root))
    new = read_plane(project.state_dir)
    assert new is not None and new.id != old.id
    assert plane_processes(old.id) == []  # the old plane's replicas were killed


def test_down_then_up_brings_back_the_slots_and_weights(project: Project, cli: CliRunner) -> None:
    _invoke(cli, "up", "--root", str(project.root))
    _, release = _deploy_blue(project)
    _invoke(cli, "down", "--root", str(project.root))
    with pytest.raises(OSError):
        get(f"http://127.0.0.1:{project.port}/orders", timeout=2)
    _invoke(cli, "up", "--root", str(project.root))

    def serves_v1() -> bool:
        status, _, body = get(f"http://127.0.0.1:{project.port}/orders")
        return status == 200 and version_of(body) == release.version

    wait_until(serves_v1, 30, "v1 served again after up")


def test_up_with_an_invalid_config_fails_with_a_message_and_starts_nothing(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text("project: shop\nenvironments: 7\n")
    result = CliRunner().invoke(local, ["up", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert "configuration is invalid" in result.output and "Traceback" not in result.output
    assert read_plane(tmp_path / ".pipeline") is None
