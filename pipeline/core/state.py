"""Phases, actions, events and the persisted ``DeploymentState``.

The state is everything the engine needs to continue after a crash: the plan (steps,
analysis spec, timeouts), where it is in the plan, the last verified weights, the
counters that analysis limits apply to, and the one ``pending`` action to run next.
It is saved after every action, together with the history records that action produced.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from pipeline.core.analysis import AnalysisSpec, Check
from pipeline.core.errors import PlatformError
from pipeline.core.model import Measurement, Release, ServiceRef, Slot, StageResult, Weights
from pipeline.core.steps import Step, step_from_dict, step_to_dict


class Phase(StrEnum):
    PENDING = "pending"
    STARTING = "starting"  # bringing up the new slot, waiting until it is ready
    PROGRESSING = "progressing"  # running the strategy's steps
    PROMOTING = "promoting"  # 100% to the new slot, verified
    DRAINING = "draining"  # new release serving; old slot kept warm, then scaled down
    SUCCEEDED = "succeeded"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"
    FAILED = "failed"  # could not reach a verified safe state: needs a human

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED})


# --- actions: what the engine must do next, through the ports -------------------------


@dataclass(frozen=True, slots=True)
class Provision:
    """Bring ``slot`` up with the release (idempotent)."""

    slot: Slot


@dataclass(frozen=True, slots=True)
class AwaitReady:
    slot: Slot
    not_before: float = 0.0


@dataclass(frozen=True, slots=True)
class SetTraffic:
    weights: Weights


@dataclass(frozen=True, slots=True)
class VerifyTraffic:
    weights: Weights
    not_before: float = 0.0


@dataclass(frozen=True, slots=True)
class Hold:
    """Wait until ``until`` (or, when None, for a ``continue``), interruptible by signals."""

    until: float | None


@dataclass(frozen=True, slots=True)
class RunStage:
    stage: str  # "test" | "load"
    slot: Slot


@dataclass(frozen=True, slots=True)
class Measure:
    """Measure ``slot`` over ``[since, until)`` once ``not_before`` has passed (the window's
    data is complete then); ``until`` 0 = the moment of measuring."""

    slot: Slot
    since: float
    not_before: float = 0.0
    until: float = 0.0


@dataclass(frozen=True, slots=True)
class ScaleDown:
    slot: Slot


Action = Provision | AwaitReady | SetTraffic | VerifyTraffic | Hold | RunStage | Measure | ScaleDown


def not_before(action: Action) -> float:
    match action:
        case AwaitReady(not_before=t) | VerifyTraffic(not_before=t) | Measure(not_before=t):
            return t
    return 0.0


# --- events: what happened ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    now: float


@dataclass(frozen=True, slots=True)
class Provisioned:
    """``reference``: what ``Compute.provision`` returned (an ECS task definition revision
    ARN), "" when the platform has none."""

    now: float
    reference: str = ""


@dataclass(frozen=True, slots=True)
class HealthObserved:
    now: float
    ready: bool
    detail: str


@dataclass(frozen=True, slots=True)
class TrafficSet:
    now: float


@dataclass(frozen=True, slots=True)
class TrafficObserved:
    now: float
    observed: Weights | None


@dataclass(frozen=True, slots=True)
class Tick:
    now: float


@dataclass(frozen=True, slots=True)
class StageFinished:
    now: float
    result: StageResult


@dataclass(frozen=True, slots=True)
class Measured:
    now: float
    canary: Measurement | None
    baseline: Measurement | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class ScaledDown:
    now: float


@dataclass(frozen=True, slots=True)
class ContinueRequested:
    now: float
    actor: str
    full: bool = False
    deployment: str = ""  # the deployment it was meant for ("" = whichever runs)


@dataclass(frozen=True, slots=True)
class AbortRequested:
    now: float
    actor: str
    reason: str = "aborted by operator"
    deployment: str = ""


@dataclass(frozen=True, slots=True)
class RollbackRequested:
    now: float
    actor: str
    reason: str = "rollback requested by operator"
    deployment: str = ""


Event = (
    Start
    | Provisioned
    | HealthObserved
    | TrafficSet
    | TrafficObserved
    | Tick
    | StageFinished
    | Measured
    | ScaledDown
    | ContinueRequested
    | AbortRequested
    | RollbackRequested
)

Signal = ContinueRequested | AbortRequested | RollbackRequested


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Deadlines, in seconds, for every wait the engine does."""

    ready: float = 300.0
    verify: float = 60.0
    stage: float = 900.0
    hold: float = 86400.0
    poll: float = 2.0


@dataclass(frozen=True, slots=True)
class Counters:
    failures: int = 0
    inconclusives: int = 0
    consecutive_errors: int = 0


@dataclass(frozen=True, slots=True)
class DeploymentState:
    id: str
    ref: ServiceRef
    release: Release
    stable: Release | None
    new_slot: Slot
    steps: tuple[Step, ...]
    analysis: AnalysisSpec
    timeouts: Timeouts
    keep_previous: float
    actor: str
    created_at: float
    drain_seconds: float = 0.0  # wait after traffic left a slot before scaling it down
    phase: Phase = Phase.PENDING
    step_index: int = 0
    weights: Weights | None = None  # last verified
    pending: Action | None = None
    deadline: float | None = None
    counters: Counters = field(default_factory=Counters)
    reason: str = ""
    aborted: bool = False
    measure_from: float = 0.0
    updated_at: float = 0.0
    # slot value -> what ``Compute.provision`` returned for it in this deployment (an ECS
    # task definition revision ARN): a resumed run hands it back (``Compute``'s ``recall``)
    slot_refs: dict[str, str] = field(default_factory=dict)

    def ref_of(self, slot: Slot) -> str:
        """The platform's reference for what this deployment provisioned in ``slot``, or ""."""
        return self.slot_refs.get(slot.value, "")

    @property
    def old_slot(self) -> Slot:
        return self.new_slot.other()

    @property
    def current_step(self) -> Step | None:
        return self.steps[self.step_index] if self.step_index < len(self.steps) else None

    def evolve(self, **changes: Any) -> DeploymentState:
        return replace(self, **changes)

    # --- persistence -------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps(_encode(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DeploymentState:
        return _decode(json.loads(text))


_ACTIONS: dict[str, type[Any]] = {
    c.__name__: c
    for c in (Provision, AwaitReady, SetTraffic, VerifyTraffic, Hold, RunStage, Measure, ScaleDown)
}


def _encode_action(action: Action | None) -> dict[str, Any] | None:
    if action is None:
        return None
    data = asdict(action)
    data["type"] = type(action).__name__
    return data


def _decode_action(data: dict[str, Any] | None) -> Action | None:
    if data is None:
        return None
    data = dict(data)
    cls = _ACTIONS[data.pop("type")]
    if "slot" in data:
        data["slot"] = Slot(data["slot"])
    if "weights" in data:
        data["weights"] = Weights(**data["weights"])
    action: Action = cls(**data)
    return action


def _encode(s: DeploymentState) -> dict[str, Any]:
    return {
        "id": s.id,
        "ref": {"service": s.ref.service, "environment": s.ref.environment},
        "release": s.release.to_dict(),
        "stable": s.stable.to_dict() if s.stable else None,
        "new_slot": s.new_slot.value,
        "steps": [step_to_dict(step) for step in s.steps],
        "analysis": asdict(s.analysis),
        "timeouts": asdict(s.timeouts),
        "keep_previous": s.keep_previous,
        "drain_seconds": s.drain_seconds,
        "actor": s.actor,
        "created_at": s.created_at,
        "phase": s.phase.value,
        "step_index": s.step_index,
        "weights": s.weights.to_dict() if s.weights else None,
        "pending": _encode_action(s.pending),
        "deadline": s.deadline,
        "counters": asdict(s.counters),
        "reason": s.reason,
        "aborted": s.aborted,
        "measure_from": s.measure_from,
        "updated_at": s.updated_at,
        "slot_refs": dict(sorted(s.slot_refs.items())),
    }


def _decode(d: dict[str, Any]) -> DeploymentState:
    analysis = dict(d["analysis"])
    analysis["checks"] = tuple(Check(**c) for c in analysis["checks"])
    return DeploymentState(
        id=d["id"],
        ref=ServiceRef(**d["ref"]),
        release=Release.from_dict(d["release"]),
        stable=Release.from_dict(d["stable"]) if d["stable"] else None,
        new_slot=Slot(d["new_slot"]),
        steps=tuple(step_from_dict(x) for x in d["steps"]),
        analysis=AnalysisSpec(**analysis),
        timeouts=Timeouts(**d["timeouts"]),
        keep_previous=d["keep_previous"],
        drain_seconds=d.get("drain_seconds", 0.0),
        actor=d["actor"],
        created_at=d["created_at"],
        phase=Phase(d["phase"]),
        step_index=d["step_index"],
        weights=Weights(**d["weights"]) if d["weights"] else None,
        pending=_decode_action(d["pending"]),
        deadline=d["deadline"],
        counters=Counters(**d["counters"]),
        reason=d["reason"],
        aborted=d["aborted"],
        measure_from=d["measure_from"],
        updated_at=d["updated_at"],
        slot_refs=_decode_slot_refs(d.get("slot_refs")),  # absent in states saved before it
    )


def _decode_slot_refs(data: Any) -> dict[str, str]:
    """``{"green": "arn:..."}``; PlatformError naming the key for anything else."""
    if data is None:
        return {}
    slots = {slot.value for slot in Slot}
    if not isinstance(data, dict) or not all(
        k in slots and isinstance(v, str) for k, v in data.items()
    ):
        raise PlatformError(
            f"state store holds a deployment whose slot_refs is not a map of slot to reference: {data!r}",
            hint="the state was written by another tool or damaged; abort the deployment and deploy again",
        )
    return dict(data)


_SIGNALS: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (ContinueRequested, AbortRequested, RollbackRequested)
}


def signal_to_json(signal: Signal) -> str:
    """``{"type": "<class name>", ...fields}``; the inverse of ``signal_from_json``."""
    data: dict[str, Any] = asdict(signal)
    data["type"] = type(signal).__name__
    return json.dumps(data, sort_keys=True)


def signal_from_json(text: str) -> Signal:
    """Raises PlatformError for a signal type this toolkit does not know."""
    data = json.loads(text)
    kind = data.pop("type", None)
    cls = _SIGNALS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise PlatformError(
            f"state store holds a signal of unknown type {kind!r}",
            hint="a newer toolkit may have queued it; upgrade, or send the signal again",
        )
    signal: Signal = cls(**data)
    return signal
