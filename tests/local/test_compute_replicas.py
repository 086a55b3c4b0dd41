"""LocalCompute against real replica processes: truthful readiness, restarts with backoff,
health-check failures, replacing a slot's release, and stops that leave no process."""

from __future__ import annotations

import json
from pathlib import Path

import psutil

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


def _compute(adapters: Adapters, command: tuple[str, ...], replicas: int = 1, start_period: float = 30.0,
             **env: str) -> LocalCompute:
    health = HealthCheck(path="/health", interval=0.2, timeout=1.0, start_period=start_period)
    launch = Launch(command=command, cwd="services/orders", replicas=replicas, env=tuple(env.items()),
                    health=health,
                    drain_timeout=2.0, stop_timeout=2.0)
    return LocalCompute(adapters.client, adapters.binding, launch, adapters.registry.snapshot_dir)


def _replicas(adapters: Adapters, slot: Slot) -> list[dict[str, object]]:
    status = adapters.client.call("GET", "/v1/status")
    slots = status["environments"]["dev"]["services"]["orders"]["slots"]
    return list(slots.get(slot.value, {}).get("replicas", []))


def _pids(adapters: Adapters, slot: Slot) -> set[int]:
    return {int(str(r["pid"])) for r in _replicas(adapters, slot) if r["pid"] is not None}


def test_replicas_run_the_release_snapshot_with_port_and_env(project: Project, adapters: Adapters) -> None:
    v1 = adapters.registry.resolve("orders")
    snapshot = adapters.registry.snapshot_dir(v1)
    assert (snapshot / "services" / "orders" / "app.py").is_file()
    compute = _compute(adapters, ("python", "app.py"), replicas=3, GREETING="hi")
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
    commit = project.commit_change("services/orders/crash.py", CRASHER, "crash")
    release = adapters.registry.resolve("orders", commit)
    compute = _compute(adapters, ("python", "crash.py"))
    compute.provision(Slot.BLUE, release)
    wait_until(lambda: int(str(_replicas(adapters, Slot.BLUE)[0]["restarts"])) >= 3, 30, "three restarts")
    replica = _replicas(adapters, Slot.BLUE)[0]
    assert replica["last_exit"] == 3
    health = compute.health(Slot.BLUE, release)
    assert not health.ready and health.healthy == 0
    assert "exited with code 3" in health.detail


def test_a_release_failing_its_health_check_never_takes_traffic_and_is_replaced(
    project: Project, adapters: Adapters
) -> None:
    commit = project.commit_change("services/orders/sick.py", SICK, "sick")
    release = adapters.registry.resolve("orders", commit)
    compute = _compute(adapters, ("python", "sick.py"), start_period=0.5)
    compute.provision(Slot.BLUE, release)
    adapters.router.set_weights(Weights(100, 0))
    wait_until(lambda: "answered 500" in compute.health(Slot.BLUE, release).detail, 30, "a failed check")
    health = compute.health(Slot.BLUE, release)
    assert (health.desired, health.healthy, health.ready) == (1, 0, False)
    status, _, body = get(adapters.url + "/orders")
    assert status == 503 and "no healthy replica" in json.loads(body)["error"]
    # never healthy within start_period, then unhealthy_threshold failures: killed, started again
    wait_until(lambda: int(str(_replicas(adapters, Slot.BLUE)[0]["restarts"])) >= 1, 30, "a replacement")
    assert _replicas(adapters, Slot.BLUE)[0]["last_exit"] == -9


def test_a_command_that_cannot_start_is_reported(project: Project, adapters: Adapters) -> None:
    release = adapters.registry.resolve("orders")
    compute = _compute(adapters, ("no-such-program-xyz",))
    compute.provision(Slot.BLUE, release)
    wait_until(lambda: "cannot start" in compute.health(Slot.BLUE, release).detail, 10, "a start error")
    assert compute.health(Slot.BLUE, release).running == 0
    launch = Launch(command=("python", "app.py"), cwd="services/nope")
    elsewhere = LocalCompute(adapters.client, adapters.binding, launch, adapters.registry.snapshot_dir)
    elsewhere.provision(Slot.GREEN, release)
    wait_until(lambda: "has no folder services/nope" in elsewhere.health(Slot.GREEN, release).detail, 10,
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
