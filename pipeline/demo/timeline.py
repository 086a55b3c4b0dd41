"""A timeline of one service's traffic during the demo: weights, error rate, request rate.

``Sampler`` polls the service's router and metrics ports in a background thread (real
time) and keeps one ``Sample`` per interval; scenes add ``Mark``s (deployment events).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.core.errors import PipelineError
from pipeline.core.model import Slot
from pipeline.core.ports import Metrics, TrafficRouter


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    blue: int
    green: int
    rps: float
    error_rate: float  # over both slots, for the last interval
    green_errors: int
    blue_errors: int
    health: str = ""  # e.g. "blue 2/2 healthy, green 2/2 healthy"


@dataclass(frozen=True, slots=True)
class Mark:
    t: float
    label: str


@dataclass
class Timeline:
    title: str
    samples: list[Sample] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)

    def mark(self, label: str) -> None:
        self.marks.append(Mark(time.time(), label))


class Sampler:
    """Samples ``router``, ``metrics`` (and ``health``) every ``interval`` seconds until stopped."""

    def __init__(
        self,
        timeline: Timeline,
        router: TrafficRouter,
        metrics: Metrics,
        interval: float = 0.5,
        health: Callable[[], str] | None = None,
    ):
        self.timeline = timeline
        self.health = health
        self.router = router
        self.metrics = metrics
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sampler-{timeline.title}", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._sample()
            except PipelineError:
                continue  # the plane may be busy between scenes: skip one point

    def _sample(self) -> None:
        now = time.time()
        weights = self.router.get_weights()
        since = now - self.interval
        blue = self.metrics.measure(Slot.BLUE, since, now)
        green = self.metrics.measure(Slot.GREEN, since, now)
        requests = blue.requests + green.requests
        errors = blue.errors + green.errors
        self.timeline.samples.append(
            Sample(
                t=now,
                blue=weights.blue if weights else 0,
                green=weights.green if weights else 0,
                rps=requests / self.interval,
                error_rate=errors / requests if requests else 0.0,
                green_errors=green.errors,
                blue_errors=blue.errors,
                health=self.health() if self.health else "",
            )
        )
