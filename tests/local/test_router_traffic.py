"""Real traffic through the local router: two releases of a real service in two slots,
weights, the test route, counters, and stopping a slot under load without dropping a request.

The service is ``APP`` from support/plane.py (a stdlib http.server), committed in a git repo,
snapshotted by the LocalRegistry, run by the plane as 2 replicas per slot.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time

from pipeline.core.model import Release, Slot, Weights
from tests.local.support.plane import Adapters, Load, Project, get, version_of, wait_until


def _ready(adapters: Adapters, slot: Slot, release: Release) -> None:
    wait_until(lambda: adapters.compute.health(slot, release).ready, 30, f"{slot} ready")


def _next_second() -> float:
    """Sleep to the start of the next wall-clock second (counters have 1 s buckets)."""
    now = time.time()
    time.sleep(math.ceil(now) - now + 0.01)
    return time.time()


def test_blue_green_weights_test_route_and_zero_downtime_stop(project: Project, adapters: Adapters) -> None:
    a = adapters
    v1 = a.registry.resolve("orders", "HEAD")
    assert a.router.get_weights() is None  # a route exists, no split yet

    # 1. blue runs v1; readiness is judged for *this* release only
    a.compute.provision(Slot.BLUE, v1)
    a.compute.provision(Slot.BLUE, v1)  # idempotent
    _ready(a, Slot.BLUE, v1)
    status, _, _ = get(a.url + "/orders")
    assert status == 503  # no weights yet: nothing is routed
    a.router.set_weights(Weights(100, 0))
    status, headers, body = get(a.url + "/orders")
    assert (status, headers["x-pipeline-slot"], version_of(body)) == (200, "blue", v1.version)

    # 2. green runs v2; the test route reaches only green, the main route only blue
    v2 = a.registry.resolve("orders", project.commit_change("services/orders/NOTES", "v2\n", "orders v2"))
    assert v2.digest != v1.digest
    assert not a.compute.health(Slot.BLUE, v2).ready
    assert a.compute.health(Slot.BLUE, v2).revision_matches is False
    a.compute.provision(Slot.GREEN, v2)
    _ready(a, Slot.GREEN, v2)
    assert a.compute.endpoint(Slot.GREEN) == a.test_url
    assert {version_of(get(a.test_url + "/orders")[2]) for _ in range(20)} == {v2.version}
    assert {version_of(get(a.url + "/orders")[2]) for _ in range(20)} == {v1.version}
    pinned_blue = a.compute.endpoint(Slot.BLUE)
    assert pinned_blue.endswith("/_slot/blue")
    assert {version_of(get(pinned_blue + "/orders")[2]) for _ in range(10)} == {v1.version}
    override = get(a.test_url + "/orders", headers={"X-Pipeline-Slot": "blue"})
    assert (override[1]["x-pipeline-slot"], version_of(override[2])) == ("blue", v1.version)

    # 3. 90/10: of 1000 requests ~10% reach green. Tolerance: +-2 percentage points
    #    (the smooth weighted round-robin is exact, 100, when nothing else is routed)
    a.router.set_weights(Weights(90, 10))
    assert a.router.get_weights() == Weights(90, 10)
    since = _next_second()
    load = Load(a.url + "/orders", workers=8)
    load.start()
    wait_until(lambda: load.total >= 1000, 60, "1000 requests")
    load.stop()
    until = time.time()
    total = sum(load.statuses.values())
    assert load.failures == [] and load.statuses[200] == total
    assert abs(load.slots["green"] / total - 0.10) <= 0.02, load.slots
    blue_m, green_m = a.metrics.measure(Slot.BLUE, since, until), a.metrics.measure(Slot.GREEN, since, until)
    assert (blue_m.requests, green_m.requests) == (load.slots["blue"], load.slots["green"])
    assert blue_m.errors == green_m.errors == 0
    assert green_m.p95_ms is not None and green_m.p95_ms > 0

    # 4. under steady concurrent load (slow requests, so some are always in flight):
    #    everything to green, then stop blue at once. Not one request may fail.
    load = Load(a.url + "/orders?ms=40", workers=8).start()
    wait_until(lambda: load.total >= 50, 30, "load running")
    a.router.set_weights(Weights(0, 100))
    a.compute.scale_down(Slot.BLUE)  # drains the in-flight requests to blue first
    after_stop = load.total
    wait_until(lambda: load.total >= after_stop + 100, 30, "load after the stop")
    load.stop()
    assert load.failures == [], load.failures[:5]
    assert load.slots["blue"] > 0 and load.slots["green"] > 0  # blue did serve, then stopped
    health = a.compute.health(Slot.BLUE, v1)
    assert (health.running, health.healthy, health.ready) == (0, 0, False)
    a.compute.scale_down(Slot.BLUE)  # idempotent
    assert {version_of(get(a.url + "/orders")[2]) for _ in range(10)} == {v2.version}


def test_a_killed_replica_is_restarted_and_rejoins_the_rotation(project: Project, adapters: Adapters) -> None:
    a = adapters
    v1 = a.registry.resolve("orders")
    a.compute.provision(Slot.BLUE, v1)
    a.router.set_weights(Weights(100, 0))
    _ready(a, Slot.BLUE, v1)

    def replicas() -> list[dict[str, object]]:
        status = a.client.call("GET", "/v1/status")
        return list(status["environments"]["dev"]["services"]["orders"]["slots"]["blue"]["replicas"])

    victim = replicas()[0]
    load = Load(a.url + "/orders", workers=4).start()
    wait_until(lambda: load.total >= 50, 30, "load running")
    os.kill(int(str(victim["pid"])), signal.SIGKILL)
    wait_until(lambda: replicas()[0]["restarts"] == 1 and replicas()[0]["state"] == "healthy", 30,
               "the killed replica restarted and healthy")
    load.stop()
    restarted = replicas()[0]
    assert restarted["pid"] != victim["pid"]
    assert restarted["last_exit"] == -9
    pids = {json.loads(get(a.url + "/orders")[2])["pid"] for _ in range(10)}
    assert restarted["pid"] in pids  # back in the round-robin
    # the router retried the GETs the dead replica refused or dropped on the live one
    assert load.statuses[200] > 0
    assert load.failures == [], load.failures


def test_router_answers_404_without_a_rule_and_503_without_a_healthy_replica(
    project: Project, adapters: Adapters
) -> None:
    a = adapters
    v1 = a.registry.resolve("orders")
    a.router.set_weights(Weights(0, 100))  # green has never been provisioned
    status, headers, body = get(a.url + "/catalog")
    assert status == 404 and headers["x-pipeline-router"] == "local"
    assert "no rule" in json.loads(body)["error"]
    status, _, body = get(a.url + "/orders")
    assert status == 503 and "no healthy replica" in json.loads(body)["error"]
    a.compute.provision(Slot.BLUE, v1)
    _ready(a, Slot.BLUE, v1)
    since = time.time() - 5
    assert a.metrics.measure(Slot.GREEN, since, time.time()).errors == 1  # the 503 counts for green
