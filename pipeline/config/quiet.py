"""An environment's answer to quiet traffic: synthetic evidence and ``on_inconclusive``.

``pipeline.yaml`` environments may set::

    analysis:
      traffic: {enabled: true, rate: 10}   # synthetic requests per second during analysis
      on_inconclusive: rollback            # rollback | pause | promote
      metrics_lag: 2m                      # AWS: how late CloudWatch's minutes are complete
    max_pause: 3s                          # cap timed pauses, bakes and keep_previous

Defaults depend on whether a person is expected to watch the environment: one that
``requires.approval`` (production, owned by Ops) sends no synthetic traffic and pauses on
inconclusive analysis for a human's ``pipeline continue`` or ``pipeline abort``; every other
environment (dev, staging: nobody uses them, nobody watches) feeds its analysis with
synthetic traffic and rolls back when even that leaves it inconclusive.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from pydantic import Field, StrictBool

from pipeline.config.fields import Duration, Model
from pipeline.core.plan import Strategy
from pipeline.core.steps import capped

DEFAULT_RATE = 10.0
CLOUDWATCH_PERIOD = 60.0
"""ALB and Lambda publish 60-second aggregates: analysis windows on AWS are whole minutes."""
DEFAULT_METRICS_LAG = 120.0

Rate = Annotated[float, Field(strict=True, gt=0, le=1000)]


class SyntheticTrafficConfig(Model):
    """Requests the deployment sends itself through the main route during analysis windows."""

    enabled: StrictBool | None = Field(
        default=None, description="unset = on, unless the environment requires an approval"
    )
    rate: Rate = Field(default=DEFAULT_RATE, description="requests per second, split by the weights")


class EnvironmentAnalysisConfig(Model):
    """How deployments to one environment get and judge their evidence."""

    traffic: SyntheticTrafficConfig = Field(default_factory=SyntheticTrafficConfig)
    on_inconclusive: Literal["rollback", "pause", "promote"] | None = Field(
        default=None,
        description="after inconclusive_limit: rollback, pause (wait for continue/abort) or promote; "
        "unset = pause if the environment requires an approval, else rollback",
    )
    metrics_lag: Duration | None = Field(
        default=None,
        description="AWS: a CloudWatch minute is measured this long after it ends (its data lands "
        "late); unset = 2m",
    )

    def metrics_timing(self, platform: str) -> tuple[float, float]:
        """(period, lag) in seconds of the platform's metrics: CloudWatch serves whole minutes
        that land late; the local platform's counters are exact at any instant."""
        if platform != "aws":
            return 0.0, 0.0
        lag = self.metrics_lag if self.metrics_lag is not None else DEFAULT_METRICS_LAG
        return CLOUDWATCH_PERIOD, lag

    def apply(
        self, strategy: Strategy, *, attended: bool, max_pause: float | None = None, platform: str = "local"
    ) -> Strategy:
        """``strategy`` as deployments to this environment run it.

        ``attended``: a person is expected to watch (the environment requires an approval).
        ``max_pause``: every timed pause, the blue-green bake, the linear interval, the
        analysis interval and ``keep_previous`` last at most this many seconds.
        ``platform``: where the metrics come from (``metrics_timing``).
        """
        enabled = self.traffic.enabled if self.traffic.enabled is not None else not attended
        period, lag = self.metrics_timing(platform)
        analysis = replace(
            strategy.analysis,
            period_seconds=period,
            lag_seconds=lag,
            synthetic_rate=self.traffic.rate if enabled else 0.0,
            on_inconclusive=self.on_inconclusive or ("pause" if attended else "rollback"),
        )
        if max_pause is None:
            return replace(strategy, analysis=analysis)
        return replace(
            strategy,
            steps=capped(strategy.steps, max_pause),
            analysis=replace(analysis, interval_seconds=min(analysis.interval_seconds, max_pause)),
            keep_previous=min(strategy.keep_previous, max_pause),
        )
