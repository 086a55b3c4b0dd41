"""The demo's rollback reaction time comes from the history's structured fields."""

from __future__ import annotations

import dataclasses
import math

from pipeline.core.model import Measurement, Slot
from pipeline.core.state import Phase
from pipeline.demo.scenes import reaction_seconds
from pipeline.operations import deploy
from pipeline.testing import release
from tests.unit.support.engine import CANARY, REF, stable_world


def test_measures_from_the_failing_verdict_to_the_verified_old_slot() -> None:
    world, _ = stable_world()
    world.platform.metrics.per_slot[Slot.GREEN] = Measurement(100, 50, 10)  # v2 fails its analysis
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    assert state.phase is Phase.ROLLED_BACK
    records = [r for r in world.store.history(REF) if r.deployment == state.id]
    verdict = min(r.ts for r in records if r.phase == "rolling_back")
    seconds = reaction_seconds(records)
    assert not math.isnan(seconds) and seconds >= 0
    assert any(r.ts == verdict + seconds and r.action == "TrafficObserved" for r in records)


def test_reworded_notes_do_not_change_the_measurement() -> None:
    world, _ = stable_world()
    world.platform.metrics.per_slot[Slot.GREEN] = Measurement(100, 50, 10)
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    records = [r for r in world.store.history(REF) if r.deployment == state.id]
    reworded = [dataclasses.replace(r, detail=f"note {i}") for i, r in enumerate(records)]
    assert reaction_seconds(reworded) == reaction_seconds(records)


def test_a_deployment_without_rollback_has_no_reaction_time() -> None:
    world, _ = stable_world()
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    assert state.phase is Phase.SUCCEEDED
    assert math.isnan(reaction_seconds(r for r in world.store.history(REF) if r.deployment == state.id))
