"""What a deployment provisioned, kept in its state: ``slot_refs`` (e.g. an ECS task
definition revision ARN per slot), saved by the codec, handed back to the compute when
another process resumes the deployment."""

from __future__ import annotations

import json

import pytest

from pipeline.core.errors import PlatformError
from pipeline.core.machine import transition
from pipeline.core.model import Release, Slot
from pipeline.core.state import AwaitReady, DeploymentState, Phase, Provisioned, Start
from pipeline.operations import deploy, resume
from pipeline.testing import FakeCompute, SimulatedCrash, release
from tests.unit.support.engine import CANARY, REF, World, stable_world

ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition/orders:7"


class RecallingCompute(FakeCompute):
    """A compute whose ``provision`` answers a reference and that takes it back (``Recalls``)."""

    def __init__(self, compute: FakeCompute) -> None:
        super().__init__(compute.log, compute.ready_after)
        self.slots = compute.slots
        self.recalled: list[tuple[Slot, str, str]] = []

    def provision(self, slot: Slot, release: Release) -> str:  # type: ignore[override]
        super().provision(slot, release)
        return f"rev-{release.version}"

    def recall(self, slot: Slot, release: Release, reference: str) -> None:
        self.recalled.append((slot, release.version, reference))


def started() -> DeploymentState:
    world, _ = stable_world()
    state = world.store.load(REF)
    assert state is not None
    fresh = state.evolve(id="d-2", release=release("v2"), stable=state.release, new_slot=Slot.GREEN,
                         phase=Phase.PENDING, pending=None, slot_refs={})
    return transition(fresh, Start(0.0))[0]


def test_provisioned_keeps_the_reference_for_the_new_slot() -> None:
    state, _ = transition(started(), Provisioned(1.0, ARN))

    assert state.pending == AwaitReady(Slot.GREEN)
    assert state.slot_refs == {"green": ARN} and state.ref_of(Slot.GREEN) == ARN
    assert state.ref_of(Slot.BLUE) == ""
    no_reference, _ = transition(started(), Provisioned(1.0))  # a platform without references
    assert no_reference.slot_refs == {}


def test_the_codec_round_trips_slot_refs() -> None:
    state, _ = transition(started(), Provisioned(1.0, ARN))

    text = state.to_json()

    assert json.loads(text)["slot_refs"] == {"green": ARN}
    assert DeploymentState.from_json(text) == state


def test_a_state_saved_before_slot_refs_existed_loads_without_them() -> None:
    state, _ = transition(started(), Provisioned(1.0, ARN))
    old = json.loads(state.to_json())
    del old["slot_refs"]

    loaded = DeploymentState.from_json(json.dumps(old))

    assert loaded.slot_refs == {} and loaded.ref_of(Slot.GREEN) == ""
    assert loaded == state.evolve(slot_refs={})


@pytest.mark.parametrize("bad", [["arn"], {"purple": ARN}, {"green": 7}])
def test_damaged_slot_refs_are_refused_naming_the_key(bad: object) -> None:
    data = json.loads(started().to_json())
    data["slot_refs"] = bad

    with pytest.raises(PlatformError) as caught:
        DeploymentState.from_json(json.dumps(data))

    assert "slot_refs is not a map of slot to reference" in caught.value.message
    assert repr(bad) in caught.value.message


def test_a_resumed_run_hands_the_compute_back_what_the_crashed_run_provisioned() -> None:
    world, _ = stable_world()
    first = RecallingCompute(world.platform.compute)
    world.platform.compute = first
    log = world.platform.log
    log.crash_after = len(log.calls) + 2  # provision green, then crash at its first health check
    with pytest.raises(SimulatedCrash):
        deploy(world.ctx(owner="ci@runner:1"), REF, release("v2"), CANARY)
    saved = world.store.load(REF)
    assert saved is not None and saved.slot_refs == {"green": "rev-v2"}

    log.crash_after = None
    world.clock.advance(31)  # the dead run's lease expires
    second = RecallingCompute(first)  # another process: a new compute, the same slots
    world.platform.compute = second
    state = resume(world.ctx(owner="ci@runner:2"), REF)

    assert state.phase is Phase.SUCCEEDED, state.reason
    assert second.recalled, "the resumed run never handed the reference back"
    assert set(second.recalled) == {(Slot.GREEN, "v2", "rev-v2")}


def test_a_compute_without_recall_is_left_alone() -> None:
    world = World()
    state = deploy(world.ctx(), REF, release("v1"), CANARY)

    assert state.phase is Phase.SUCCEEDED
    assert state.slot_refs == {}  # FakeCompute.provision returns None
