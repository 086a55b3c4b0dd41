"""LocalCompute against real replica processes: truthful readiness, restarts with backoff,
health-check failures, replacing a slot's release, and stops that leave no process."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from pipeline.core.errors import PlatformError
from pipeline.core.model import Release, Slot, Weights
from pipeline.local.adapters import LocalCompute
from pipeline.local.specs import HealthCheck, Launch
from tests.local.support.plane import Adapters, Project, get, wait_until

CRASHER = "import sys, time\ntime.sleep(0.05)\nsys.exit(3)\n"
SICK = '''
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500)
        self.end_headers()
    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
'''


def _compute(adapters: Adapters, replicas: int = 1, start_period: float = 30.0) -> LocalCompute:
    """The numbers of the launch; what runs comes from the release's service.yaml."""
    health = HealthCheck(path="/health", interval=0.2, timeout=1.0, start_period=start_period)
    launch = Launch(command=("ignored",), replicas=replicas, health=health, drain_timeout=2.0,
                    stop_timeout=2.0)
    return LocalCompute(adapters.client, adapters.binding, launch, adapters.registry.snapshot_dir)


def _detail(compute: LocalCompute, slot: Slot, release: Release) -> str:
    """The health detail, or the reason the plane gave up on the release."""
    try:
        return compute.health(slot, release).detail
    except PlatformError as exc:
        return exc.message


def _replicas(adapters: Adapters, slot: Slot) -> list[dict[str, object]]:
    status = adapters.client.call("GET", "/v1/status")
    slots = status["environments"]["dev"]["services"]["orders"]["slots"]
    return list(slots.get(slot.value, {}).get("replicas", []))


def _pids(adapters: Adapters, slot: Slot) -> set[int]:
    return {int(str(r["pid"])) for r in _replicas(adapters, slot) if r["pid"] is not None}


def test_replicas_run_the_release_snapshot_with_port_and_env(project: Project, adapters: Adapters) -> None:
    commit = project.commit_launch("greet", "python app.py", env={"GREETING": "hi"})
    v1 = adapters.registry.resolve("orders", commit)
    snapshot = adapters.registry.snapshot_dir(v1)
    assert (snapshot / "services" / "orders" / "app.py").is_file()
    compute = _compute(adapters, replicas=3)
    compute.provision(Slot.GREEN, v1)
    wait_until(lambda: compute.health(Slot.GREEN, v1).ready, 30, "green ready")
    health = compute.health(Slot.GREEN, v1)
    assert (health.running, health.desired, health.healthy) == (3, 3, 3)
    for pid in _pids(adapters, Slot.GREEN):
        proc = psutil.Process(pid)
        assert Path(proc.cwd()) == snapshot / "services" / "orders"
        environ = proc.environ()
        assert environ["GREETING"] == "hi" and environ["PIPELINE_DIGEST"] == v1.digest
        assert environ["PIPELINE_SLOT"] == "green" and int(environ["PORT"]) > 0
    ports = {r["port"] for r in _replicas(adapters, Slot.GREEN)}
    assert len(ports) == 3


def test_a_crashing_release_is_restarted_with_backoff_and_never_ready(
    project: Project, adapters: Adapters
) -> None:
    commit = project.commit_launch("crash", "python crash.py", files={"crash.py": CRASHER})
    release = adapters.registry.resolve("orders", commit)
    compute = _compute(adapters)
    compute.provision(Slot.BLUE, release)
    wait_until(lambda: int(str(_replicas(adapters, Slot.BLUE)[0]["restarts"])) >= 3, 30, "three restarts")
    replica = _replicas(adapters, Slot.BLUE)[0]
    assert replica["last_exit"] == 3
    with pytest.raises(PlatformError, match="exited with code 3"):
        compute.health(Slot.BLUE, release)


def test_a_release_failing_its_health_check_never_takes_traffic_and_is_replaced(
    project: Project, adapters: Adapters
) -> None:
    commit = project.commit_launch("sick", "python sick.py", files={"sick.py": SICK})
    release = adapters.registry.resolve("orders", commit)
    compute = _compute(adapters, start_period=0.5)
    compute.provision(Slot.BLUE, release)
    adapters.router.set_weights(Weights(100, 0))
    wait_until(lambda: "answered 500" in _detail(compute, Slot.BLUE, release), 30, "a failed check")
    assert _replicas(adapters, Slot.BLUE)[0]["state"] != "healthy"
    status, _, body = get(adapters.url + "/orders")
    assert status == 503 and "no healthy replica" in json.loads(body)["error"]
    # never healthy within start_period, then unhealthy_threshold failures: killed, started again
    wait_until(lambda: int(str(_replicas(adapters, Slot.BLUE)[0]["restarts"])) >= 1, 30, "a replacement")
    assert _replicas(adapters, Slot.BLUE)[0]["last_exit"] == -9


def test_a_command_that_cannot_start_is_reported(project: Project, adapters: Adapters) -> None:
    release = adapters.registry.resolve("orders", project.commit_launch("typo", "no-such-program-xyz"))
    compute = _compute(adapters)
    compute.provision(Slot.BLUE, release)
    wait_until(lambda: "cannot start" in _detail(compute, Slot.BLUE, release), 10, "a start error")
    assert _replicas(adapters, Slot.BLUE)[0]["pid"] is None
    nowhere = adapters.registry.resolve("orders", project.commit_launch("nope", "python app.py", cwd="nope"))
    compute.provision(Slot.GREEN, nowhere)
    wait_until(lambda: "has no folder services/orders/nope" in _detail(compute, Slot.GREEN, nowhere), 10,
               "a missing folder")


def test_provisioning_another_release_replaces_the_slot_and_scale_down_stops_it(
    project: Project, adapters: Adapters
) -> None:
    compute = adapters.compute
    v1 = adapters.registry.resolve("orders")
    compute.provision(Slot.BLUE, v1)
    wait_until(lambda: compute.health(Slot.BLUE, v1).ready, 30, "v1 ready")
    old = _pids(adapters, Slot.BLUE)
    v2 = adapters.registry.resolve("orders", project.commit_change("services/orders/NOTES", "2", "v2"))
    compute.provision(Slot.BLUE, v2)
    health = compute.health(Slot.BLUE, v1)
    assert not health.revision_matches and not health.ready  # never "ready" for the old release
    wait_until(lambda: compute.health(Slot.BLUE, v2).ready, 30, "v2 ready")
    wait_until(lambda: not any(psutil.pid_exists(p) for p in old), 10, "v1 processes gone")
    new = _pids(adapters, Slot.BLUE)
    assert new and not new & old
    compute.scale_down(Slot.BLUE)
    assert not any(psutil.pid_exists(p) for p in new)  # gone when scale_down returns
    assert compute.health(Slot.BLUE, v2).detail == "blue is empty"
    compute.scale_down(Slot.BLUE)  # idempotent


def test_health_of_an_empty_slot_is_not_ready(adapters: Adapters) -> None:
    release = Release("orders", "x", "sha256:" + "0" * 64, "0" * 40)
    health = adapters.compute.health(Slot.GREEN, release)
    assert (health.running, health.desired, health.ready) == (0, 0, False)
