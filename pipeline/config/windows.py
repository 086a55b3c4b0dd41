"""Warnings about analyses that cannot see complete CloudWatch data in the time they are given.

On AWS an analysis reads whole CloudWatch minutes and waits until the last one is complete
(``metrics_lag`` after it ends; see ``pipeline.core.analysis.analysis_window``). Such a
plan still works, but not as written: a window shorter than a minute reads a whole minute,
and a pause shorter than the window plus the lag is followed by a longer wait for data.
Per-hop checks (``hop_p95_ms``, ``hop_error_rate``) cannot be judged on AWS yet: the
toolkit reads no traces there, so every such analysis is Inconclusive.
``pipeline validate`` prints these warnings; they never fail validation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.config.loader import Project, strategy_for
from pipeline.core.analysis import HOP_METRICS, AnalysisSpec
from pipeline.core.steps import Analyze, Pause, Step, format_seconds

__all__ = ["WindowWarning", "window_warnings"]


@dataclass(frozen=True, slots=True)
class WindowWarning:
    """A plan whose analysis on ``environments`` cannot run as ``service`` configures it."""

    environments: tuple[str, ...]
    service: str
    message: str

    def __str__(self) -> str:
        return f"service {self.service} on {', '.join(self.environments)}: {self.message}"


def window_warnings(project: Project) -> list[WindowWarning]:
    """Every service's analysis on every AWS environment that deploys, checked against
    CloudWatch's period and the environment's ``metrics_lag``; environments with the same
    problem share one warning."""
    found: dict[tuple[str, str], list[str]] = {}
    for env_name, env in sorted(project.config.environments.items()):
        if env.platform != "aws" or env.access == "read":
            continue
        for service in sorted(project.services):
            strategy = env.shape(strategy_for(project, service))
            for message in [*_problems(strategy.steps, strategy.analysis),
                            *_hop_problems(strategy.steps, strategy.analysis)]:
                found.setdefault((service, message), []).append(env_name)
    return [WindowWarning(tuple(envs), service, message) for (service, message), envs in found.items()]


def _hop_problems(steps: tuple[Step, ...], spec: AnalysisSpec) -> list[str]:
    hops = [f"{c.metric} of {c.hop}" for c in spec.checks if c.metric in HOP_METRICS]
    if not hops or not any(isinstance(step, Analyze) for step in steps):
        return []
    return [f"{', '.join(hops)} cannot be judged here: the toolkit reads no traces on AWS yet, so every "
            f"analysis is Inconclusive and on_inconclusive ({spec.on_inconclusive}) decides; keep "
            "per-hop checks to local environments or accept that"]


def _problems(steps: tuple[Step, ...], spec: AnalysisSpec) -> list[str]:
    period, lag = spec.period_seconds, spec.lag_seconds
    if period <= 0 or not any(isinstance(step, Analyze) for step in steps):
        return []
    problems: list[str] = []
    if spec.window_seconds < period:
        problems.append(
            f"analysis window {format_seconds(spec.window_seconds)} is shorter than CloudWatch's "
            f"{format_seconds(period)} period: each analysis reads at least one whole minute; "
            f"set deploy.analysis.window to {format_seconds(period)} or more"
        )
    complete = math.ceil(max(spec.window_seconds, period) / period) * period + lag
    for index, step in enumerate(steps[:-1]):
        if not isinstance(step, Pause) or step.seconds is None or not isinstance(steps[index + 1], Analyze):
            continue
        if step.seconds < complete:
            problems.append(
                f"step {index + 1} pauses {format_seconds(step.seconds)}, but complete CloudWatch data "
                f"for the analysis after it needs {format_seconds(complete)} (window "
                f"{format_seconds(complete - lag)} + metrics_lag {format_seconds(lag)}): the analysis "
                f"waits until then; pause {format_seconds(complete)} or more to make the plan say so"
            )
    return problems
