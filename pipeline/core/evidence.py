"""Synthetic evidence: when a deployment drives its own traffic, and when it is enough.

In a quiet environment (dev, staging) no user sends requests, so an analysis window holds
nothing to judge. With ``AnalysisSpec.synthetic_rate`` above zero the engine asks the
platform's ``TrafficDriver`` to send that many requests per second through the
environment's *main* route while an analysis step lies ahead and the new slot takes
traffic; the router's weights split them between both slots, so the new release and the
stable baseline are judged on the same requests (as Flagger's load tester feeds canary
analysis). Both functions here are pure: the engine reconciles the driver with
``traffic_rate()`` after every tick, so a resumed deployment drives again by itself.
"""

from __future__ import annotations

from pipeline.core.state import DeploymentState, Phase
from pipeline.core.steps import Analyze

HEADROOM = 1.25
"""Synthetic traffic is given this much more time than ``min_requests / rate`` needs."""

BUCKET_SECONDS = 1.0
"""Resolution of the metrics windows (the local router counts per second)."""


def traffic_rate(s: DeploymentState) -> float:
    """Requests per second the deployment should send now (0 = stop).

    Synthetic traffic flows while the deployment progresses, the new slot has verified
    weight, and an analysis step is still to come, i.e. during every analysis window.
    """
    rate = s.analysis.synthetic_rate
    if rate <= 0 or s.phase is not Phase.PROGRESSING or s.weights is None:
        return 0.0
    if s.weights.of(s.new_slot) <= 0:
        return 0.0
    if not any(isinstance(step, Analyze) for step in s.steps[s.step_index :]):
        return 0.0
    return rate


def evidence_due(s: DeploymentState) -> float | None:
    """The time by which synthetic traffic gives every judged slot ``min_requests``.

    None when the deployment sends no synthetic traffic. The judged slots are the new one
    and, when the analysis compares error rates, the stable one; the smaller share of the
    weights decides. Never later than the end of a full analysis window after the weights
    took effect: a window that cannot hold enough requests is judged as it is.
    """
    spec = s.analysis
    if traffic_rate(s) <= 0 or s.weights is None:
        return None
    share = s.weights.of(s.new_slot)
    if spec.max_error_rate_increase is not None and s.stable is not None and s.weights.of(s.old_slot) > 0:
        share = min(share, s.weights.of(s.old_slot))
    seconds = spec.min_requests / (spec.synthetic_rate * share / 100) * HEADROOM + BUCKET_SECONDS
    return s.measure_from + min(seconds, spec.window_seconds)
