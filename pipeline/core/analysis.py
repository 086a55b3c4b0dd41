"""Analysis: checks with thresholds, measurements, verdicts.

``assess()`` is pure: it turns a measurement of the new slot (and optionally of the
stable slot, as a baseline) into a ``Verdict`` with a reason. Verdicts are data, never
exceptions; the state machine counts them against the limits in ``AnalysisSpec``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pipeline.core.model import Measurement

MetricName = Literal["error_rate", "p95_ms"]


class Outcome(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Check:
    """``metric`` of the new slot must be at most ``max``."""

    metric: MetricName
    max: float


@dataclass(frozen=True, slots=True)
class AnalysisSpec:
    """How the new slot is judged.

    ``min_requests``: below this many requests in the window the verdict is
    Inconclusive, never Successful. ``max_error_rate_increase``: when set and a baseline
    is available, the new slot's error rate may exceed the stable slot's by at most this.
    Limits follow Argo Rollouts: a run rolls back when failures exceed ``failure_limit``,
    inconclusive verdicts exceed ``inconclusive_limit``, or consecutive provider errors
    exceed ``consecutive_error_limit``.
    """

    checks: tuple[Check, ...] = (Check("error_rate", 0.01),)
    min_requests: int = 20
    window_seconds: float = 60.0
    interval_seconds: float = 10.0
    max_error_rate_increase: float | None = None
    failure_limit: int = 0
    inconclusive_limit: int = 2
    consecutive_error_limit: int = 2


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reason: str
    measured: dict[str, float] | None = None


ALARM_PREFIX = "alarm:"


def firing_alarms(m: Measurement) -> list[str]:
    """Alarms the metrics source reported in ALARM, as ``("alarm:<name>", 1.0)`` in ``extra``."""
    return [key[len(ALARM_PREFIX) :] for key, value in m.extra if key.startswith(ALARM_PREFIX) and value]


def assess(spec: AnalysisSpec, canary: Measurement, baseline: Measurement | None) -> Verdict:
    """Judge ``canary`` against ``spec``'s checks and, if given, the stable ``baseline``.

    A firing alarm fails the verdict whatever the traffic: alarms are the platform's own
    judgement (CloudWatch on AWS) and need no minimum request count.
    """
    alarms = firing_alarms(canary)
    if alarms:
        return Verdict(Outcome.FAILED, f"alarm in ALARM: {', '.join(alarms)}", {"alarms": float(len(alarms))})
    measured: dict[str, float] = {
        "requests": float(canary.requests),
        "errors": float(canary.errors),
        "error_rate": round(canary.error_rate, 6),
    }
    if canary.p95_ms is not None:
        measured["p95_ms"] = round(canary.p95_ms, 3)
    if canary.requests < spec.min_requests:
        return Verdict(
            Outcome.INCONCLUSIVE,
            f"only {canary.requests} requests reached the new release in the window "
            f"(need {spec.min_requests})",
            measured,
        )
    failures: list[str] = []
    for check in spec.checks:
        value = _value(canary, check.metric)
        if value is None:
            return Verdict(Outcome.INCONCLUSIVE, f"no data for {check.metric} in the window", measured)
        if value > check.max:
            failures.append(f"{check.metric} {_fmt(value)} > {_fmt(check.max)}")
    if spec.max_error_rate_increase is not None and baseline and baseline.requests:
        allowed = baseline.error_rate + spec.max_error_rate_increase
        measured["baseline_error_rate"] = round(baseline.error_rate, 6)
        if canary.error_rate > allowed:
            failures.append(
                f"error_rate {_fmt(canary.error_rate)} > baseline "
                f"{_fmt(baseline.error_rate)} + {_fmt(spec.max_error_rate_increase)}"
            )
    if failures:
        return Verdict(Outcome.FAILED, "; ".join(failures), measured)
    return Verdict(Outcome.SUCCESSFUL, f"all checks passed over {canary.requests} requests", measured)


def _value(m: Measurement, metric: MetricName) -> float | None:
    if metric == "error_rate":
        return m.error_rate
    return m.p95_ms


def _fmt(value: float) -> str:
    return f"{value:.4g}"
