"""Crash anywhere, resume, and end in the same place with the same history.

For every side-effecting action of a canary deployment, a run is killed right after that
action took effect (before its state was saved); a new process then resumes it. The
resumed run must reach the same end state as an uninterrupted run, with the same
history, each note exactly once.
"""

from __future__ import annotations

import pytest

from pipeline.core.model import Measurement, Slot
from pipeline.core.state import Phase
from pipeline.operations import deploy, resume
from pipeline.testing import SimulatedCrash, release
from tests.unit.support.engine import CANARY, REF, World, stable_world


def _run(bad: bool, crash_at: int | None) -> tuple[World, Phase, int]:
    world, _ = stable_world()
    if bad:
        router = world.platform.router  # v2 fails once it takes half of the traffic

        def green() -> Measurement:
            share = router.actual.green if router.actual else 0
            return Measurement(500, 100 if share >= 50 else 0, 10)

        world.platform.metrics.per_slot[Slot.GREEN] = green
    log = world.platform.log
    log.crash_after = None if crash_at is None else len(log.calls) + crash_at
    try:
        state = deploy(world.ctx(owner="ci@runner:100"), REF, release("v2"), CANARY)
    except SimulatedCrash:
        world.clock.advance(31)  # the dead run's lease expires
        log.crash_after = None
        state = resume(world.ctx(owner="ci@runner:200"), REF)
    return world, state.phase, len(log.calls)


def _notes(world: World) -> list[str]:
    return [r.detail for r in world.store.history(REF) if r.kind == "history" and r.version == "v2"]


@pytest.mark.parametrize("bad", [False, True], ids=["good-canary", "bad-canary"])
def test_resume_after_a_crash_after_every_action_reaches_the_same_end(bad: bool) -> None:
    reference, phase, _ = _run(bad, None)
    expected = _notes(reference)
    assert phase is (Phase.ROLLED_BACK if bad else Phase.SUCCEEDED)
    actions = len(reference.platform.log.calls)
    assert actions >= 12  # the canary really has many actions to crash after
    for k in range(1, actions + 1):
        world, end, _ = _run(bad, k)
        assert end is phase, f"crash after action {k}"
        assert _notes(world) == expected, f"crash after action {k}"
        assert world.platform.router.actual == reference.platform.router.actual
        assert world.platform.compute.slots == reference.platform.compute.slots
        outcome = [
            r for r in world.store.history(REF) if r.action.startswith("deployment.") and r.version == "v2"
        ]
        assert len(outcome) == 1
