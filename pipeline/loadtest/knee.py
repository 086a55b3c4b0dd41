"""Judging a ramp: each step against the thresholds, the knee, and the limit hit first.

- A step *meets the thresholds* when it sent requests and its own failure ratio and p95
  stay within ``fail_ratio`` and ``p95_ms`` (``min_rps`` is a floor for a whole run, not
  for a step of a few users, so steps are not held to it).
- The **knee** is the highest step such that it and every step below it met the
  thresholds: the most load the service took within its limits. None when the first step
  already failed.
- The **first limit** is read from the steps up to the first one that failed:
  ``per_key_throttle`` or ``function_concurrency`` when the edge or a Lambda runtime
  answered 429 (the earliest step with throttles decides; within one step the larger
  count), else ``backend_latency`` when the failing step kept its failures within the
  limit while its p95 grew past the first step's (requests queue somewhere behind the
  service), else ``errors`` (failures that are not throttles). ``none`` when every step
  met the thresholds and nothing throttled.

The gate of a ramp is the knee: it must exist (the first step met the thresholds) and
reach ``min_knee`` users when that is set. Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.loadtest.gates import GateCheck
from pipeline.loadtest.ramp import Ramp, StepFigures
from pipeline.loadtest.settings import Thresholds
from pipeline.markdown import md

LimitKind = Literal["per_key_throttle", "function_concurrency", "backend_latency", "errors", "none"]

LIMIT_LABELS: dict[str, str] = {
    "per_key_throttle": "per-key throttle (429 from the API edge)",
    "function_concurrency": "function concurrency (429 from the Lambda runtime)",
    "backend_latency": "latency growing in a backend (requests queue behind the service)",
    "errors": "errors that are not throttles",
    "none": "no limit reached",
}


@dataclass(frozen=True, slots=True)
class StepVerdict:
    """One step judged; ``reasons`` is empty when it met the thresholds."""

    step: StepFigures
    reasons: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.reasons


@dataclass(frozen=True, slots=True)
class FirstLimit:
    """The limit the ramp ran into first, at ``users`` (None for ``none``), and why we say so."""

    kind: LimitKind
    users: int | None
    evidence: str

    @property
    def label(self) -> str:
        return LIMIT_LABELS[self.kind]


@dataclass(frozen=True, slots=True)
class RampOutcome:
    """A ramp's steps judged: the knee (users, None when no step met the thresholds) and the
    first limit."""

    ramp: Ramp
    verdicts: tuple[StepVerdict, ...]
    knee: int | None
    limit: FirstLimit

    @property
    def headline(self) -> str:
        knee = f"knee at {self.knee} users" if self.knee is not None else "no step met the thresholds"
        at = f" at {self.limit.users} users" if self.limit.users is not None else ""
        return f"{knee}; first limit: {self.limit.label}{at}"

    def check(self) -> GateCheck:
        """The ramp's gate: the knee reaches ``min_knee`` (default: the first step)."""
        need = self.ramp.min_knee or self.ramp.start
        if self.knee is None:
            first = self.verdicts[0] if self.verdicts else None
            why = "; ".join(first.reasons) if first else "the ramp recorded no step"
            reason = f"no step met the thresholds: at {self.ramp.start} users {why}"
        else:
            reason = f"the knee is at {self.knee} users, below the {need} required (load.ramp.min_knee)"
        return GateCheck("knee", "knee (highest step within thresholds)", float(self.knee or 0),
                         float(need), ">=", "users", reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ramp": self.ramp.to_dict(),
            "knee_users": self.knee,
            "first_limit": {
                "kind": self.limit.kind, "users": self.limit.users, "evidence": self.limit.evidence,
            },
            "steps": [
                {**v.step.to_dict(), "passed": v.passed, "reasons": list(v.reasons)} for v in self.verdicts
            ],
        }


def judge(step: StepFigures, thresholds: Thresholds) -> StepVerdict:
    """``step`` against ``fail_ratio`` and ``p95_ms``; a step without requests fails."""
    reasons: list[str] = []
    if step.requests == 0:
        reasons.append("no request was made in this step")
    if thresholds.fail_ratio is not None and step.fail_ratio > thresholds.fail_ratio:
        reasons.append(f"failure ratio {step.fail_ratio:.2%} is above the {thresholds.fail_ratio:.2%} limit")
    if thresholds.p95_ms is not None and step.p95_ms > thresholds.p95_ms:
        reasons.append(f"p95 {step.p95_ms:g} ms is above the {thresholds.p95_ms:g} ms limit")
    return StepVerdict(step, tuple(reasons))


def analyse(ramp: Ramp, steps: Sequence[StepFigures], thresholds: Thresholds) -> RampOutcome:
    """Judge every step, find the knee and the first limit (see the module docstring)."""
    verdicts = tuple(judge(step, thresholds) for step in steps)
    knee: int | None = None
    for verdict in verdicts:
        if not verdict.passed:
            break
        knee = verdict.step.users
    return RampOutcome(ramp, verdicts, knee, first_limit(verdicts, thresholds))


def first_limit(verdicts: Sequence[StepVerdict], thresholds: Thresholds) -> FirstLimit:
    """Which limit the steps ran into first (see the module docstring)."""
    breaking = next((i for i, v in enumerate(verdicts) if not v.passed), None)
    considered = verdicts if breaking is None else verdicts[: breaking + 1]
    for verdict in considered:
        throttled = _throttle(verdict.step)
        if throttled is not None:
            return throttled
    if not verdicts:
        return FirstLimit("none", None, "the ramp recorded no step")
    if breaking is None:
        top = verdicts[-1].step.users
        return FirstLimit("none", None, f"every step up to {top} users met the thresholds without throttles")
    step, first = verdicts[breaking].step, verdicts[0].step
    errors_low = thresholds.fail_ratio is None or step.fail_ratio <= thresholds.fail_ratio
    if step.requests and errors_low and (breaking == 0 or step.p95_ms > first.p95_ms):
        series = " → ".join(f"{v.step.p95_ms:g}" for v in verdicts[: breaking + 1])
        return FirstLimit(
            "backend_latency",
            step.users,
            f"p95 rose {series} ms from {first.users} to {step.users} users while failures stayed at "
            f"{step.fail_ratio:.2%} (no throttles)",
        )
    return FirstLimit(
        "errors",
        step.users,
        f"{step.failures} of {step.requests} requests failed at {step.users} users "
        f"({step.server_errors} server errors, no throttles)",
    )


def _throttle(step: StepFigures) -> FirstLimit | None:
    if not (step.key_throttled or step.function_throttled):
        return None
    if step.key_throttled >= step.function_throttled:
        return FirstLimit(
            "per_key_throttle",
            step.users,
            f"{step.key_throttled} of {step.requests} requests got 429 from the API edge "
            f"at {step.users} users",
        )
    return FirstLimit(
        "function_concurrency",
        step.users,
        f"{step.function_throttled} of {step.requests} requests got 429 from the Lambda runtime "
        f"at {step.users} users",
    )


def markdown_lines(outcome: RampOutcome) -> list[str]:
    """The ramp's section of the summary: knee, first limit and one row per step."""
    ramp = outcome.ramp
    knee = f"**{outcome.knee} users**" if outcome.knee is not None else "none (the first step failed)"
    lines = [
        f"Ramp {ramp.start} → {ramp.stop} users by {ramp.step}, {ramp.step_duration:g} s a step · "
        f"knee: {knee} · first limit: {md(outcome.limit.label)}",
        "",
        f"- {md(outcome.limit.evidence)}",
        "",
        "| users | requests | failures | req/s | p95 (ms) | 429 edge | 429 function | 5xx | result |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for v in outcome.verdicts:
        s = v.step
        mark = "✅" if v.passed else "❌ " + md("; ".join(v.reasons))
        lines.append(
            f"| {s.users} | {s.requests} | {s.failures} | {s.rps:g} | {s.p95_ms:g} | {s.key_throttled} | "
            f"{s.function_throttled} | {s.server_errors} | {mark} |"
        )
    return [*lines, ""]
