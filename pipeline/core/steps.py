"""The step vocabulary and the strategies that expand into it.

A strategy is data: it expands to a tuple of steps that the one engine runs in order.
Adding a strategy adds an expansion function, never a code path in the engine.

After the last step the engine always finishes the same way: 100% to the new slot,
verified, then the previous slot kept warm for ``keep_previous`` and scaled down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args


@dataclass(frozen=True, slots=True)
class SetWeight:
    """Send ``percent`` of traffic to the new slot, then verify it took effect."""

    percent: int

    def __post_init__(self) -> None:
        if not 0 <= self.percent <= 100:
            raise ValueError(f"set_weight must be within 0..100, got {self.percent}")


@dataclass(frozen=True, slots=True)
class Pause:
    """Bake for ``seconds``; ``None`` waits until ``pipeline continue``."""

    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Analyze:
    """Measure the new slot (and the stable baseline) and judge with the service's checks."""


@dataclass(frozen=True, slots=True)
class LoadStage:
    """Run the service's load stage against the new slot's test route."""


@dataclass(frozen=True, slots=True)
class TestStage:
    """Run the service's test command against the new slot's test route."""

    __test__ = False  # not a pytest test class


@dataclass(frozen=True, slots=True)
class Approve:
    """Wait for ``pipeline continue`` (a human gate inside a rollout)."""


Step = SetWeight | Pause | Analyze | LoadStage | TestStage | Approve

StrategyName = Literal["blue-green", "canary", "linear"]
"""The strategies a service can choose; ``STRATEGY_NAMES`` lists them in order."""
STRATEGY_NAMES: tuple[StrategyName, ...] = get_args(StrategyName)

_MARKERS: dict[str, Step] = {
    "analyze": Analyze(),
    "load": LoadStage(),
    "test": TestStage(),
    "approve": Approve(),
}
STEP_KEYS = ("set_weight", "pause", *_MARKERS)
"""The keys of the step vocabulary: one per step type, as written in config and state."""


def blue_green(*, load_stage: bool = False, bake_seconds: float = 0.0) -> tuple[Step, ...]:
    """Tests (and optionally load) on the idle slot, then 0 -> 100 at once, bake, analyse."""
    steps: list[Step] = [TestStage()]
    if load_stage:
        steps.append(LoadStage())
    steps.append(SetWeight(100))
    if bake_seconds:
        steps.append(Pause(bake_seconds))
    steps.append(Analyze())
    return tuple(steps)


def canary(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """Arbitrary user steps; a test stage always runs first on the idle slot."""
    if steps and isinstance(steps[0], TestStage):
        return steps
    return (TestStage(), *steps)


def linear(
    *, increment: int, interval_seconds: float, analyze: bool = True, load_stage: bool = False
) -> tuple[Step, ...]:
    """Raise the new slot's share by ``increment`` every ``interval_seconds`` up to 100."""
    if not 1 <= increment <= 100:
        raise ValueError(f"linear increment must be within 1..100, got {increment}")
    steps: list[Step] = [TestStage()]
    if load_stage:
        steps.append(LoadStage())
    percent = 0
    while percent < 100:
        percent = min(100, percent + increment)
        steps.append(SetWeight(percent))
        if percent < 100:
            steps.append(Pause(interval_seconds))
            if analyze:
                steps.append(Analyze())
    if analyze:
        steps.append(Analyze())
    return tuple(steps)


def capped(steps: tuple[Step, ...], seconds: float) -> tuple[Step, ...]:
    """``steps`` with every timed pause shortened to at most ``seconds`` (open pauses stay)."""
    return tuple(
        Pause(min(step.seconds, seconds)) if isinstance(step, Pause) and step.seconds is not None else step
        for step in steps
    )


def describe(step: Step) -> str:
    """A short human label for plans and progress output."""
    match step:
        case SetWeight(percent=p):
            return f"set weight {p}% to the new release"
        case Pause(seconds=None):
            return "pause until `pipeline continue`"
        case Pause(seconds=s):
            return f"pause {format_seconds(s or 0)}"
        case Analyze():
            return "analyse metrics"
        case LoadStage():
            return "load stage on the test route"
        case TestStage():
            return "test stage on the test route"
        case Approve():
            return "wait for approval (`pipeline continue`)"
    raise AssertionError(step)  # pragma: no cover - exhaustive


def step_to_dict(step: Step) -> dict[str, object]:
    """The single-key mapping for ``step`` (``{"set_weight": 10}``, ``{"analyze": True}``)."""
    match step:
        case SetWeight(percent=p):
            return {"set_weight": p}
        case Pause(seconds=s):
            return {"pause": s}
        case Analyze():
            return {"analyze": True}
        case LoadStage():
            return {"load": True}
        case TestStage():
            return {"test": True}
        case Approve():
            return {"approve": True}
    raise AssertionError(step)  # pragma: no cover - exhaustive


def step_from_dict(data: dict[str, object]) -> Step:
    """The step a single-key mapping stands for: the inverse of ``step_to_dict``, shared by
    the persisted state and the ``deploy.steps`` entries of ``service.yaml``."""
    for key in STEP_KEYS:
        if key in data:
            return step_from_entry(key, data[key])
    raise ValueError(f"unknown step {data!r}: use one of {', '.join(STEP_KEYS)}")


def step_from_entry(key: str, value: object) -> Step:
    """The step for one ``key: value`` entry (``key`` in ``STEP_KEYS``); markers ignore ``value``."""
    if key == "set_weight":
        return SetWeight(int(str(value)))
    if key == "pause":
        return Pause(None if value is None else float(str(value)))
    if key not in _MARKERS:
        raise ValueError(f"unknown step key {key!r}: use one of {', '.join(STEP_KEYS)}")
    return _MARKERS[key]


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:g}s"
    if seconds < 7200:
        return f"{seconds / 60:g}m"
    return f"{seconds / 3600:g}h"
