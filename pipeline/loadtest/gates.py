"""The load gate: figures against thresholds, one check per configured threshold.

A verdict is data: every check carries the measured value, the limit and a sentence saying
why it failed. A run that sent no request at all fails (no data is never a pass), even
when no threshold is configured. Pure functions; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pipeline.loadtest.settings import Thresholds
from pipeline.loadtest.stats import LoadFigures


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One threshold judged: ``value`` must be ``<=`` (a ceiling) or ``>=`` (a floor) ``limit``."""

    name: str  # "fail_ratio" | "p95_ms" | "min_rps" | "requests"
    label: str
    value: float
    limit: float
    bound: Literal["<=", ">="]
    unit: str
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.value <= self.limit if self.bound == "<=" else self.value >= self.limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "limit": self.limit,
            "bound": self.bound,
            "unit": self.unit,
            "passed": self.passed,
            "reason": "" if self.passed else self.reason,
        }


def evaluate(figures: LoadFigures, thresholds: Thresholds) -> tuple[GateCheck, ...]:
    """The checks of every configured threshold, plus "at least one request" always."""
    checks = [_requests_check(figures)]
    if thresholds.fail_ratio is not None:
        checks.append(_fail_ratio_check(figures, thresholds.fail_ratio))
    if thresholds.p95_ms is not None:
        checks.append(_p95_check(figures, thresholds.p95_ms))
    if thresholds.min_rps is not None:
        checks.append(_rps_check(figures, thresholds.min_rps))
    return tuple(checks)


def reasons(checks: tuple[GateCheck, ...]) -> tuple[str, ...]:
    """Why the gate failed: one sentence per failed check (empty when it passed)."""
    return tuple(check.reason for check in checks if not check.passed)


def _requests_check(figures: LoadFigures) -> GateCheck:
    return GateCheck(
        name="requests",
        label="requests sent",
        value=float(figures.requests),
        limit=1.0,
        bound=">=",
        unit="",
        reason="no request was made: the load test measured nothing "
        "(check the locustfile's tasks and the target URL)",
    )


def _fail_ratio_check(figures: LoadFigures, limit: float) -> GateCheck:
    return GateCheck(
        name="fail_ratio",
        label="failure ratio",
        value=round(figures.fail_ratio, 6),
        limit=limit,
        bound="<=",
        unit="",
        reason=f"failure ratio {figures.fail_ratio:.2%} ({figures.failures} of {figures.requests} "
        f"requests) is above the {limit:.2%} limit",
    )


def _p95_check(figures: LoadFigures, limit: float) -> GateCheck:
    return GateCheck(
        name="p95_ms",
        label="p95 response time",
        value=figures.p95_ms,
        limit=limit,
        bound="<=",
        unit="ms",
        reason=f"p95 response time {figures.p95_ms:g} ms is above the {limit:g} ms limit",
    )


def _rps_check(figures: LoadFigures, limit: float) -> GateCheck:
    return GateCheck(
        name="min_rps",
        label="throughput",
        value=figures.rps,
        limit=limit,
        bound=">=",
        unit="req/s",
        reason=f"throughput {figures.rps:g} req/s is below the {limit:g} req/s minimum "
        f"({figures.requests} requests in {figures.duration_s:g} s)",
    )
