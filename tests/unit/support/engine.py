"""A small harness wiring the engine to the in-memory fakes, shared by the engine tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.core.analysis import AnalysisSpec
from pipeline.core.model import Release, ServiceRef
from pipeline.core.plan import Strategy
from pipeline.core.state import DeploymentState, Timeouts
from pipeline.core.steps import Analyze, Pause, SetWeight, canary
from pipeline.operations import Context
from pipeline.testing import CollectingSink, FakeClock, FakePlatform, InMemoryStore, release

REF = ServiceRef("orders", "staging")

CANARY = Strategy(
    steps=canary((SetWeight(20), Pause(60), Analyze(), SetWeight(50), Pause(60), Analyze())),
    analysis=AnalysisSpec(min_requests=10, inconclusive_limit=1, consecutive_error_limit=1),
    timeouts=Timeouts(ready=60, verify=10, stage=60, hold=600, poll=1),
)


@dataclass
class World:
    clock: FakeClock = field(default_factory=FakeClock)
    platform: FakePlatform = field(default_factory=FakePlatform.create)
    sink: CollectingSink = field(default_factory=CollectingSink)
    store: InMemoryStore = field(init=False)
    actor: str = "alice"

    def __post_init__(self) -> None:
        self.store = InMemoryStore(self.clock)

    def ctx(self, owner: str = "alice@host:1", actor: str = "") -> Context:
        return Context(
            store=self.store,
            locks=self.store,
            clock=self.clock,
            sink=self.sink,
            platform_for=lambda ref: self.platform.ports(),
            actor=actor or self.actor,
            owner=owner,
        )

    def history(self, ref: ServiceRef = REF) -> list[str]:
        return [r.detail for r in self.store.history(ref) if r.kind == "history"]

    def actions(self, ref: ServiceRef = REF) -> list[str]:
        return [r.action for r in self.store.history(ref)]


def stable_world(strategy: Strategy = CANARY) -> tuple[World, Release]:
    """A world where v1 was deployed successfully (on blue)."""
    from pipeline.operations import deploy

    world = World()
    v1 = release("v1")
    state = deploy(world.ctx(), REF, v1, strategy)
    assert state.phase.value == "succeeded"
    world.platform.log.calls.clear()
    world.platform.router.history.clear()
    return world, v1


def phases(state: DeploymentState) -> str:
    return state.phase.value
