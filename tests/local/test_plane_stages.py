"""HttpSmokeStages, the stage runner the local factory falls back to without pipeline.loadtest:
real HTTP through the test route of a real slot."""

from __future__ import annotations

from pipeline.core.model import Slot
from pipeline.local.stages import HttpSmokeStages
from tests.local.support.plane import Adapters, wait_until


def test_smoke_stages_pass_through_a_ready_slot_and_fail_on_an_empty_one(adapters: Adapters) -> None:
    release = adapters.registry.resolve("orders")
    adapters.compute.provision(Slot.GREEN, release)
    wait_until(lambda: adapters.compute.health(Slot.GREEN, release).ready, 30, "green ready")
    stages = HttpSmokeStages("/orders/health", load_requests=20)
    endpoint = adapters.compute.endpoint(Slot.GREEN)
    test = stages.run("test", endpoint, timeout=10)
    assert test.passed and "GET /orders/health answered 2xx" in test.summary
    load = stages.run("load", endpoint, timeout=10)
    assert load.passed and "20/20" in load.summary and "smoke burst only" in load.summary
    empty = stages.run("test", adapters.compute.endpoint(Slot.BLUE), timeout=1)
    assert not empty.passed and "answered 503" in empty.summary
