"""The ``deploy:`` section of ``service.yaml`` and its expansion to a core ``Strategy``.

A strategy is data: ``DeployConfig.strategy()`` expands ``blue-green``, ``canary`` or
``linear`` with ``pipeline.core.steps`` into a tuple of steps, and turns the analysis,
timeouts and ``keep_previous`` settings into the core value objects the engine runs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StrictBool, WithJsonSchema
from pydantic_core import PydanticCustomError

from pipeline.config.fields import (
    DURATION_SCHEMA,
    Count,
    Duration,
    Fraction,
    Issue,
    Model,
    Percent,
    PositiveDuration,
    duration_seconds,
    presence,
)
from pipeline.core.analysis import HOP_METRICS, AnalysisSpec, Check
from pipeline.core.plan import Strategy
from pipeline.core.state import Timeouts
from pipeline.core.steps import (
    STEP_KEYS,
    STRATEGY_NAMES,
    Step,
    StrategyName,
    blue_green,
    canary,
    linear,
    step_from_entry,
)

_CORE_ANALYSIS = AnalysisSpec()
_EMPTY_OBJECT: dict[str, Any] = {"type": "object", "maxProperties": 0}


class TimeoutsConfig(Model):
    """Deadlines for the engine's waits. Unset keys keep the value of the level below
    (core defaults < ``pipeline.yaml`` ``defaults.timeouts`` < the service's ``deploy.timeouts``)."""

    ready: PositiveDuration | None = Field(default=None, description="new slot running and healthy")
    verify: PositiveDuration | None = Field(default=None, description="traffic weights took effect")
    stage: PositiveDuration | None = Field(default=None, description="one test or load stage")
    hold: PositiveDuration | None = Field(default=None, description="open pause or approval")
    poll: PositiveDuration | None = Field(default=None, description="interval between status checks")

    def over(self, base: Timeouts) -> Timeouts:
        """``base`` with every key set here replaced."""
        return replace(base, **{key: value for key, value in self if value is not None})


def _marker(value: object) -> object:
    if value is None or value is True or (isinstance(value, dict) and not value):
        return True
    raise PydanticCustomError("marker", "this step takes no options: write `{}` after the colon")


def _pause(value: object) -> object:
    if value is None or (isinstance(value, dict) and not value):
        return None
    return duration_seconds(value)


Marker = Annotated[
    bool,
    BeforeValidator(_marker),
    WithJsonSchema({"anyOf": [_EMPTY_OBJECT, {"type": "null"}, {"const": True}]}),
]
PauseValue = Annotated[
    float | None,
    BeforeValidator(_pause),
    WithJsonSchema({"anyOf": [*DURATION_SCHEMA["anyOf"], {"type": "null"}, _EMPTY_OBJECT]}),
]


class StepConfig(Model):
    """One canary step: a mapping with exactly one of the keys in ``STEP_KEYS``."""

    set_weight: Percent | None = Field(default=None, description="percent of traffic to the new release")
    pause: PauseValue = Field(
        default=None, description="bake time; `{}` or null waits for `pipeline continue`"
    )
    analyze: Marker | None = Field(default=None, description="judge the new release with deploy.analysis")
    load: Marker | None = Field(default=None, description="run the load stage on the test route")
    test: Marker | None = Field(default=None, description="run the test stage on the test route")
    approve: Marker | None = Field(default=None, description="wait for `pipeline continue`")

    @classmethod
    def _presence_rules(cls, data: dict[Any, Any]) -> list[Issue]:
        if not data:
            return [((), f"empty step: write one of {', '.join(STEP_KEYS)} (e.g. `- set_weight: 10`)")]
        if len(data) > 1:
            keys = ", ".join(str(key) for key in data)
            return [((), f"a step has exactly one key, this one has {keys}: put each in its own list item")]
        return []

    def _value_rules(self) -> list[Issue]:
        if "set_weight" in self.model_fields_set and self.set_weight is None:
            return [(("set_weight",), "set_weight needs a percentage: use a whole number from 0 to 100")]
        return []

    def to_step(self) -> Step:
        """The core step this mapping stands for (exactly one key is set)."""
        (key,) = self.model_fields_set
        return step_from_entry(key, getattr(self, key))


class LinearConfig(Model):
    """``linear`` strategy: raise the new release's share by ``increment`` every ``interval``."""

    increment: Annotated[int, Field(strict=True, ge=1, le=100)] = Field(description="percent per step")
    interval: PositiveDuration = Field(description="pause between increments")
    analyze: StrictBool = Field(default=True, description="analyse after every increment")


class CheckConfig(Model):
    """``metric`` of the new release must be at most ``max``; ``hop_*`` metrics judge one
    hop of the new release's traces, named by ``hop`` (see docs/observability.md)."""

    metric: Literal["error_rate", "p95_ms", "hop_p95_ms", "hop_error_rate"]
    max: Annotated[float, Field(strict=True, ge=0)] = Field(
        description="error_rate, hop_error_rate: fraction 0..1 (0.01 = 1%); p95_ms, hop_p95_ms: milliseconds"
    )
    hop: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description='hop metrics only: "<service> <span name>" or "<service> -> <service>"'
    )

    def _value_rules(self) -> list[Issue]:
        issues: list[Issue] = []
        if self.metric in ("error_rate", "hop_error_rate") and self.max > 1:
            issues.append((
                ("max",),
                f"{self.metric} is a fraction of {'requests' if self.metric == 'error_rate' else 'spans'}, "
                f"{self.max:g} is more than all of them: use a value from 0 to 1 (0.01 = 1%)",
            ))
        if self.metric in HOP_METRICS and self.hop is None:
            issues.append(((), f'{self.metric} judges one hop: add `hop: "catalog db.query"` (a service '
                           'and a span name, or "orders -> catalog" for a call)'))
        if self.metric not in HOP_METRICS and self.hop is not None:
            issues.append((("hop",), f"{self.metric} is measured over the whole slot, not one hop: remove "
                           "hop, or use hop_p95_ms / hop_error_rate"))
        return issues


class AnalysisConfig(Model):
    """How the new release is judged (see ``pipeline.core.analysis.AnalysisSpec``)."""

    interval: PositiveDuration = _CORE_ANALYSIS.interval_seconds
    window: PositiveDuration = _CORE_ANALYSIS.window_seconds
    min_requests: Count = _CORE_ANALYSIS.min_requests
    checks: tuple[CheckConfig, ...] = tuple(
        CheckConfig(metric=c.metric, max=c.max) for c in _CORE_ANALYSIS.checks
    )
    max_error_rate_increase: Fraction | None = Field(
        default=None, description="new error rate may exceed the stable release's by at most this"
    )
    failure_limit: Count = _CORE_ANALYSIS.failure_limit
    inconclusive_limit: Count = _CORE_ANALYSIS.inconclusive_limit
    consecutive_error_limit: Count = _CORE_ANALYSIS.consecutive_error_limit

    def _value_rules(self) -> list[Issue]:
        seen: set[str] = set()
        issues: list[Issue] = []
        for i, check in enumerate(self.checks):
            what = f"{check.metric} of {check.hop}" if check.hop else check.metric
            if what in seen:
                issues.append((("checks", i, "metric"), f"{what} is checked twice: keep one check"))
            seen.add(what)
        return issues

    def to_spec(self) -> AnalysisSpec:
        return AnalysisSpec(
            checks=tuple(Check(c.metric, c.max, c.hop or "") for c in self.checks),
            min_requests=self.min_requests,
            window_seconds=self.window,
            interval_seconds=self.interval,
            max_error_rate_increase=self.max_error_rate_increase,
            failure_limit=self.failure_limit,
            inconclusive_limit=self.inconclusive_limit,
            consecutive_error_limit=self.consecutive_error_limit,
        )


# strategy -> (keys it requires, keys that do not apply to it)
_STRATEGY_KEYS: dict[StrategyName, tuple[set[str], set[str]]] = {
    "blue-green": (set(), {"steps", "linear"}),
    "canary": ({"steps"}, {"linear", "bake", "load_stage"}),
    "linear": ({"linear"}, {"steps", "bake"}),
}


class DeployConfig(Model):
    """How a new release replaces the stable one."""

    strategy: StrategyName = "blue-green"
    steps: Annotated[tuple[StepConfig, ...], Field(min_length=1)] | None = Field(
        default=None, description="canary only: the rollout, one single-key mapping per step"
    )
    linear: LinearConfig | None = Field(default=None, description="linear only")
    bake: Duration = Field(default=0.0, description="blue-green only: pause after switching, before analysis")
    load_stage: StrictBool = Field(default=False, description="blue-green/linear: load stage before shifting")
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    keep_previous: Duration = Field(default=0.0, description="keep the previous release warm this long")
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)

    @classmethod
    def _presence_rules(cls, data: dict[Any, Any]) -> list[Issue]:
        strategy = data.get("strategy", "blue-green")
        if strategy not in STRATEGY_NAMES:
            return []
        required, forbidden = _STRATEGY_KEYS[strategy]
        return presence(data, "strategy", strategy, required, forbidden)

    @property
    def uses_load_stage(self) -> bool:
        """Whether a deployment runs the service's load stage."""
        return self.load_stage or any(s.load is not None for s in self.steps or ())

    def expand(self) -> tuple[Step, ...]:
        """The strategy as a tuple of core steps."""
        if self.strategy == "canary":
            return canary(tuple(step.to_step() for step in self.steps or ()))
        if self.strategy == "linear" and self.linear is not None:
            return linear(
                increment=self.linear.increment,
                interval_seconds=self.linear.interval,
                analyze=self.linear.analyze,
                load_stage=self.load_stage,
            )
        return blue_green(load_stage=self.load_stage, bake_seconds=self.bake)

    def strategy_with(self, defaults: TimeoutsConfig) -> Strategy:
        """The core ``Strategy``: steps, analysis, timeouts (core < ``defaults`` < this
        section's ``timeouts``) and ``keep_previous`` in seconds."""
        return Strategy(
            steps=self.expand(),
            analysis=self.analysis.to_spec(),
            timeouts=self.timeouts.over(defaults.over(Timeouts())),
            keep_previous=self.keep_previous,
        )
