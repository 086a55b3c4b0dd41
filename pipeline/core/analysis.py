"""Analysis: checks with thresholds, measurements, verdicts.

``assess()`` is pure: it turns a measurement of the new slot (and optionally of the
stable slot, as a baseline) into a ``Verdict`` with a reason. Verdicts are data, never
exceptions; the state machine counts them against the limits in ``AnalysisSpec``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pipeline.core.model import Measurement

MetricName = Literal["error_rate", "p95_ms", "hop_p95_ms", "hop_error_rate"]
HOP_METRICS: tuple[MetricName, ...] = ("hop_p95_ms", "hop_error_rate")
"""Metrics of one hop of the new slot's traces (``Check.hop``, ``pipeline.core.hops``):
``hop_p95_ms`` the p95 of the hop's time, ``hop_error_rate`` the share of its spans in error."""
OnInconclusive = Literal["rollback", "pause", "promote"]
"""What a run does once inconclusive verdicts exceed the limit: roll back, wait for a
person's ``pipeline continue`` / ``pipeline abort``, or accept the step and go on."""


class Outcome(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Check:
    """``metric`` of the new slot must be at most ``max``; a hop metric names its ``hop``
    (``catalog db.query``, ``orders -> catalog``)."""

    metric: MetricName
    max: float
    hop: str = ""


def has_hop_checks(spec: AnalysisSpec) -> bool:
    """Whether judging needs the new slot's traces (``Measurement.hops``)."""
    return any(c.metric in HOP_METRICS for c in spec.checks)


@dataclass(frozen=True, slots=True)
class AnalysisSpec:
    """How the new slot is judged.

    ``min_requests``: below this many requests in the window the verdict is
    Inconclusive, never Successful. ``max_error_rate_increase``: when set and a baseline
    is available, the new slot's error rate may exceed the stable slot's by at most this.
    Limits follow Argo Rollouts: a run rolls back when failures exceed ``failure_limit``,
    inconclusive verdicts exceed ``inconclusive_limit``, or consecutive provider errors
    exceed ``consecutive_error_limit``; what "rolls back" means for inconclusive verdicts
    is ``on_inconclusive``.

    ``synthetic_rate``: requests per second the deployment sends itself through the
    environment's main route while an analysis window is open (0 = none), so that quiet
    environments still give every slot ``min_requests``; the weights split them.

    ``period_seconds`` and ``lag_seconds`` describe the metrics source (see
    ``analysis_window``): 0 / 0 for counters that are exact at any instant (the local
    platform); 60 / 120 for CloudWatch, which serves whole-minute aggregates that land late.
    """

    checks: tuple[Check, ...] = (Check("error_rate", 0.01),)
    min_requests: int = 20
    window_seconds: float = 60.0
    interval_seconds: float = 10.0
    max_error_rate_increase: float | None = None
    failure_limit: int = 0
    inconclusive_limit: int = 2
    consecutive_error_limit: int = 2
    synthetic_rate: float = 0.0
    on_inconclusive: OnInconclusive = "rollback"
    period_seconds: float = 0.0
    lag_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Window:
    """The span ``[since, until)`` one measurement reads, and when its data is complete.

    ``until`` 0 means "the moment the measurement is taken" (an exact source)."""

    since: float
    until: float
    ready_at: float


def analysis_window(spec: AnalysisSpec, measure_from: float, now: float, after: float = 0.0) -> Window:
    """The window an analysis entered at ``now`` measures (``measure_from``: when the
    current weights were verified; ``after``: the end of the previous window, if any).

    An exact source (``period_seconds`` 0) reads the last ``window_seconds`` up to the
    moment it measures, never before ``measure_from``. A periodic source is read in whole
    periods only: the window spans ``window_seconds`` rounded up to whole periods, starts
    no earlier than the first boundary after ``measure_from`` and ends on the last boundary
    at or before ``now``, or later when that leaves too little time since ``measure_from``
    (a whole window of traffic at the current weights) or since ``after`` (one period at
    least: a repeated measurement never judges the same data twice). Its data is complete
    ``lag_seconds`` after it ends. CloudWatch rounds ``StartTime`` down to the
    period, so an unaligned start would count a partial minute of earlier traffic.
    """
    period = spec.period_seconds
    if period <= 0:
        return Window(max(now - spec.window_seconds, measure_from), 0.0, now)
    first = math.ceil(measure_from / period) * period
    length = max(1, math.ceil(spec.window_seconds / period)) * period
    until = max(math.floor(now / period) * period, first + length)
    if after > 0:
        until = max(until, after + period)
    since = max(until - length, first)
    return Window(since, until, until + spec.lag_seconds)


@dataclass(frozen=True, slots=True)
class Verdict:
    """``starved``: Inconclusive only because a slot got fewer than ``min_requests``."""

    outcome: Outcome
    reason: str
    measured: dict[str, float] | None = None
    starved: bool = False


def synthetic_requests(m: Measurement) -> int | None:
    """Requests of ``m`` the deployment sent itself; None when nobody counted them."""
    return None if m.synthetic is None else min(m.requests, m.synthetic)


def assess(spec: AnalysisSpec, canary: Measurement, baseline: Measurement | None) -> Verdict:
    """Judge ``canary`` against ``spec``'s checks and, if given, the stable ``baseline``.

    A firing alarm fails the verdict whatever the traffic: alarms are the platform's own
    judgement (CloudWatch on AWS) and need no minimum request count. When the new slot is
    compared with the stable one (``max_error_rate_increase`` and a baseline given), the
    baseline needs ``min_requests`` too: a comparison with a handful of requests is no
    evidence. Reasons say how many requests were synthetic ("42 of 60 synthetic").
    """
    if canary.alarms:
        return Verdict(
            Outcome.FAILED,
            f"alarm in ALARM: {', '.join(canary.alarms)}",
            {"alarms": float(len(canary.alarms))},
        )
    compared = baseline if spec.max_error_rate_increase is not None else None
    measured = _measured(canary, compared)
    short = _short_of_requests(spec, canary, compared)
    if short:
        return Verdict(Outcome.INCONCLUSIVE, short, measured, starved=True)
    failures: list[str] = []
    for check in spec.checks:
        value = _value(canary, check)
        if value is None:
            return Verdict(Outcome.INCONCLUSIVE, _no_data(canary, check), measured)
        if check.metric in HOP_METRICS:
            measured[f"{check.metric} {check.hop}"] = round(value, 6)
        if value > check.max:
            bound = _BOUND_NOTE if _is_bound(canary, check.metric) else ""
            failures.append(f"{_label(check)} {_fmt(value)} > {_fmt(check.max)}{bound}")
    if spec.max_error_rate_increase is not None and compared is not None and compared.requests:
        allowed = compared.error_rate + spec.max_error_rate_increase
        if canary.error_rate > allowed:
            failures.append(
                f"error_rate {_fmt(canary.error_rate)} > baseline "
                f"{_fmt(compared.error_rate)} + {_fmt(spec.max_error_rate_increase)}"
            )
    evidence = _evidence(canary, compared)
    if failures:
        return Verdict(Outcome.FAILED, f"{'; '.join(failures)} ({evidence})", measured)
    return Verdict(Outcome.SUCCESSFUL, f"all checks passed over {evidence}", measured)


def _measured(canary: Measurement, baseline: Measurement | None) -> dict[str, float]:
    measured: dict[str, float] = {
        "requests": float(canary.requests),
        "errors": float(canary.errors),
        "error_rate": round(canary.error_rate, 6),
    }
    if canary.p95_ms is not None:
        measured["p95_ms"] = round(canary.p95_ms, 3)
        if canary.p95_upper_bound:
            measured["p95_upper_bound"] = 1.0
    synthetic = synthetic_requests(canary)
    if synthetic is not None:
        measured["synthetic"] = float(synthetic)
    if baseline is not None:
        measured["baseline_requests"] = float(baseline.requests)
        measured["baseline_error_rate"] = round(baseline.error_rate, 6)
        base_synthetic = synthetic_requests(baseline)
        if base_synthetic is not None:
            measured["baseline_synthetic"] = float(base_synthetic)
    return measured


def _short_of_requests(spec: AnalysisSpec, canary: Measurement, baseline: Measurement | None) -> str:
    """Why the window holds too few requests to judge, or "" when it holds enough."""
    if canary.requests < spec.min_requests:
        return (
            f"only {_count(canary)} reached the new release in the window (need {spec.min_requests})"
        )
    if baseline is not None and baseline.requests < spec.min_requests:
        return (
            f"only {_count(baseline)} reached the stable release in the window "
            f"(need {spec.min_requests} to compare)"
        )
    return ""


def _count(m: Measurement) -> str:
    synthetic = synthetic_requests(m)
    if synthetic is None:
        return f"{m.requests} requests"
    return f"{m.requests} requests ({synthetic} synthetic)"


def _evidence(canary: Measurement, baseline: Measurement | None) -> str:
    """``60 requests to the new release, 42 of 60 synthetic; 540 to the stable one, ...``."""
    text = f"{canary.requests} requests to the new release{_share(canary)}"
    if baseline is not None:
        text += f"; {baseline.requests} to the stable one{_share(baseline)}"
    return text


def _share(m: Measurement) -> str:
    synthetic = synthetic_requests(m)
    return "" if synthetic is None else f", {synthetic} of {m.requests} synthetic"


_BOUND_NOTE = " (the window's maximum: the source has no p95)"


def _is_bound(m: Measurement, metric: MetricName) -> bool:
    return metric == "p95_ms" and m.p95_upper_bound


def _value(m: Measurement, check: Check) -> float | None:
    if check.metric == "error_rate":
        return m.error_rate
    if check.metric == "p95_ms":
        return m.p95_ms
    hop = next((h for h in m.hops or () if h.hop == check.hop), None)
    if hop is None:
        return None
    return hop.p95_ms if check.metric == "hop_p95_ms" else hop.error_rate


def _label(check: Check) -> str:
    return f"{check.metric} of {check.hop}" if check.metric in HOP_METRICS else check.metric


def _no_data(m: Measurement, check: Check) -> str:
    """Why ``check`` has no value: no traces read at all, or none of its hop in them."""
    if check.metric not in HOP_METRICS:
        return f"no data for {check.metric} in the window"
    if m.hops is None:
        return (f"{_label(check)} not checked: this platform keeps no traces the toolkit can read "
                "(per-hop checks need the local platform's span store; not available on AWS yet)")
    seen = ", ".join(h.hop for h in m.hops[:8]) or "none"
    return f"no spans of hop {check.hop!r} in the window's traces (hops seen: {seen})"


def _fmt(value: float) -> str:
    return f"{value:.4g}"
