"""Step load: the plan of a ramp and the figures locust recorded for each of its steps.

A ramp runs ``start`` users, then ``start + step``, ... up to ``stop`` (the last step is
``stop`` even when the steps do not land on it), each level for ``step_duration`` seconds.
Locust runs it with the shape class in ``ramp_shape.py``, which the runner passes next to
the service's own locustfile (so any locustfile can be ramped): the shape reads the plan
from ``PLAN_ENV`` and writes one record per finished step to the file named by
``STEPS_ENV``. Each record holds the step's own requests, failures and response-time
histogram (the difference of locust's running totals at the step's start and end) and the
throttles seen in it:

- ``key_throttled``: 429 answers of the API edge (a key's rate limit or quota; on AWS,
  API Gateway's usage plans answer 429 this way);
- ``function_throttled``: 429 answers of a Lambda runtime (the local runtime marks every
  answer with ``X-Lambda-Version``; behind API Gateway on AWS a Lambda throttle reaches
  clients as a 500 and counts as a server error);
- ``server_errors``: 5xx answers.

A ``ThrottleProbe`` adds the platform's own count of Lambda throttles in each step's
window (``with_function_throttles``): on AWS the only place a throttle behind API Gateway
shows as one. The larger of the two counts is kept, so a throttle seen both ways (the local
runtime's 429 and its metrics) counts once.

Pure values and file reading; judging the steps is ``knee``'s business.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.core.errors import PipelineError, PlatformError
from pipeline.core.model import Slot
from pipeline.core.ports import Metrics
from pipeline.loadtest.stats import percentile

ThrottleProbe = Callable[[float, float], int]
"""Function throttles between two epoch times, from the platform's Metrics port."""

PLAN_ENV = "PIPELINE_RAMP"
STEPS_ENV = "PIPELINE_RAMP_STEPS"
MAX_STEPS = 100
"""More steps than this is a typo in ``step``, not a plan."""


@dataclass(frozen=True, slots=True)
class Ramp:
    """Step load from ``start`` to ``stop`` users by ``step``, ``step_duration`` seconds each.

    ``min_knee`` (users) is what the gate requires of the knee; None requires only that the
    first step meets the thresholds.
    """

    start: int
    stop: int
    step: int
    step_duration: float
    min_knee: int | None = None

    def __post_init__(self) -> None:
        if self.start < 1 or self.step < 1:
            raise ValueError(f"ramp from and step must be at least 1, got {self.start} and {self.step}")
        if self.stop < self.start:
            raise ValueError(f"ramp to ({self.stop}) must not be below from ({self.start})")
        if self.step_duration < 1:
            raise ValueError(f"ramp step_duration must be at least 1 second, got {self.step_duration:g}")
        if len(self.levels) > MAX_STEPS:
            raise ValueError(f"a ramp of {len(self.levels)} steps is more than {MAX_STEPS}: raise step")
        if self.min_knee is not None and not self.start <= self.min_knee <= self.stop:
            raise ValueError(f"ramp min_knee {self.min_knee} must be within {self.start}..{self.stop}")

    @property
    def levels(self) -> tuple[int, ...]:
        """Users at each step, lowest first; the last is always ``stop``."""
        levels = list(range(self.start, self.stop + 1, self.step))
        if levels[-1] != self.stop:
            levels.append(self.stop)
        return tuple(levels)

    @property
    def duration(self) -> float:
        """Seconds the whole ramp runs."""
        return len(self.levels) * self.step_duration

    def plan_json(self, spawn_rate: float) -> str:
        """What the shape class reads from ``PLAN_ENV``."""
        return json.dumps(
            {"levels": list(self.levels), "step_duration": self.step_duration, "spawn_rate": spawn_rate}
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.start,
            "to": self.stop,
            "step": self.step,
            "step_duration": self.step_duration,
            "min_knee": self.min_knee,
            "levels": list(self.levels),
        }


@dataclass(frozen=True, slots=True)
class StepFigures:
    """What one step measured. Epoch seconds for ``started``/``ended``; the histogram maps
    locust's rounded milliseconds to counts."""

    users: int
    started: float
    ended: float
    requests: int
    failures: int
    histogram: tuple[tuple[int, int], ...] = ()
    key_throttled: int = 0
    function_throttled: int = 0
    server_errors: int = 0

    @property
    def fail_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def p95_ms(self) -> float:
        return percentile(dict(self.histogram), 0.95)

    @property
    def p50_ms(self) -> float:
        return percentile(dict(self.histogram), 0.50)

    @property
    def duration_s(self) -> float:
        return max(0.0, self.ended - self.started)

    @property
    def rps(self) -> float:
        return round(self.requests / self.duration_s, 2) if self.duration_s > 0 else 0.0

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> StepFigures:
        """One record as ``ramp_shape.py`` writes it; KeyError/TypeError/ValueError if not."""
        return cls(
            users=int(record["users"]),
            started=float(record["started"]),
            ended=float(record["ended"]),
            requests=int(record["requests"]),
            failures=int(record["failures"]),
            histogram=tuple(sorted((int(float(k)), int(v)) for k, v in record["response_times"].items())),
            key_throttled=int(record.get("key_throttled", 0)),
            function_throttled=int(record.get("function_throttled", 0)),
            server_errors=int(record.get("server_errors", 0)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "started": self.started,
            "ended": self.ended,
            "requests": self.requests,
            "failures": self.failures,
            "fail_ratio": round(self.fail_ratio, 6),
            "rps": self.rps,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "key_throttled": self.key_throttled,
            "function_throttled": self.function_throttled,
            "server_errors": self.server_errors,
        }


def read_steps(path: Path) -> tuple[StepFigures, ...]:
    """The steps the shape class recorded in ``path``; ``PlatformError`` when it wrote none
    or the file is not its output."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"expected a list of steps, found {type(data).__name__}")
        return tuple(StepFigures.from_record(record) for record in data)
    except FileNotFoundError as exc:
        raise PlatformError(
            f"the ramp recorded no step: {path} does not exist",
            hint="read locust.log next to it: locust may have stopped before the first step ended",
        ) from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PlatformError(
            f"cannot read the ramp's steps {path}: {exc}",
            hint="the file is not what the ramp shape writes; run the load test again",
        ) from exc


def with_function_throttles(steps: Sequence[StepFigures], probe: ThrottleProbe) -> tuple[StepFigures, ...]:
    """``steps`` with ``function_throttled`` raised to what ``probe`` counts in each step's
    window. A probe that fails (the Metrics port is unreachable) leaves a step as recorded."""
    counted = []
    for step in steps:
        try:
            measured = probe(step.started, step.ended)
        except PipelineError:
            measured = 0
        counted.append(replace(step, function_throttled=max(step.function_throttled, measured)))
    return tuple(counted)


def metrics_throttles(metrics: Metrics) -> ThrottleProbe:
    """A probe over a Lambda service's ``Metrics``: the ``throttles`` figure of both slots."""

    def probe(since: float, until: float) -> int:
        return sum(int(dict(metrics.measure(slot, since, until).extra).get("throttles", 0)) for slot in Slot)

    return probe
