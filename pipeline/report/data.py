"""What a deployment report shows, gathered from the ports: the deployment's history records
(weights and verdicts over time), the platform's metrics sampled per slot over the
deployment's extent (request rate, error rate, p95), and the slowest traced request per slot.

Nothing here renders; ``pipeline.report.page`` turns a ``DeploymentReport`` into HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.core.errors import PipelineError
from pipeline.core.hops import Trace
from pipeline.core.model import Slot
from pipeline.core.ports import Metrics, Record, Traces
from pipeline.core.state import DeploymentState
from pipeline.report.svg import Bar

MAX_SAMPLES = 40
"""Metric windows per slot: the deployment's extent is cut into at most this many (>= 1 s each)."""


@dataclass(frozen=True, slots=True)
class SlotSample:
    """One metrics window of one slot: ``t`` is the window's end (epoch seconds)."""

    t: float
    rate: float  # requests per second
    error_rate: float  # percent of requests answered 5xx
    p95_ms: float | None


@dataclass(frozen=True, slots=True)
class Slowest:
    """The slowest traced request of one slot: its trace id, total time and waterfall bars."""

    trace_id: str
    duration_ms: float
    bars: tuple[Bar, ...]


@dataclass(frozen=True, slots=True)
class DeploymentReport:
    """Everything one deployment's report charts. ``metrics_error``/``traces_error`` say why a
    source could not be read; ``slowest`` is None when the platform keeps no traces."""

    state: DeploymentState
    records: tuple[Record, ...]
    t0: float
    t1: float
    samples: dict[Slot, tuple[SlotSample, ...]]
    slowest: dict[Slot, Slowest | None] | None
    metrics_error: str = ""
    traces_error: str = ""


def deployment_records(history: Sequence[Record], deployment: str) -> tuple[Record, ...]:
    """The records of one deployment, oldest first."""
    return tuple(r for r in history if r.deployment == deployment)


def sample(
    metrics: Metrics, slot: Slot, t0: float, t1: float, count: int = MAX_SAMPLES
) -> tuple[SlotSample, ...]:
    """``slot``'s traffic in consecutive windows over ``[t0, t1)``, each at least one second."""
    width = max(1.0, (t1 - t0) / count)
    found: list[SlotSample] = []
    since = t0
    while since < t1:
        until = min(since + width, t1)
        m = metrics.measure(slot, since, until)
        seconds = max(until - since, 1e-9)
        found.append(SlotSample(until, m.requests / seconds, m.error_rate * 100.0, m.p95_ms))
        since = until
    return tuple(found)


def slowest(traces: Sequence[Trace]) -> Slowest | None:
    """The trace that took longest end to end, as waterfall bars (None when there is none)."""
    best: Trace | None = None
    best_ms = -1.0
    for trace in traces:
        if not trace:
            continue
        ms = (max(s.end for s in trace) - min(s.start for s in trace)) * 1000.0
        if ms > best_ms:
            best, best_ms = trace, ms
    if best is None:
        return None
    start = min(s.start for s in best)
    ids = {s.span_id for s in best}
    parents = {s.span_id: s.parent_id for s in best}

    def depth(span_id: str) -> int:
        d, parent = 0, parents.get(span_id)
        while parent in ids and d < 32:
            d, parent = d + 1, parents.get(parent or "")
        return d

    bars = tuple(
        Bar(f"{s.service}: {s.name}", (s.start - start) * 1000.0, max(0.0, (s.end - s.start) * 1000.0),
            depth(s.span_id), s.status == "error")
        for s in sorted(best, key=lambda s: (s.start, -s.end))
    )
    trace_id = str(getattr(best[0], "trace_id", ""))
    return Slowest(trace_id, best_ms, bars)


def gather(state: DeploymentState, history: Sequence[Record], metrics: Metrics, traces: Traces | None,
           now: float) -> DeploymentReport:
    """The report of ``state``'s deployment: its records, per-slot samples and slowest traces.

    A source that fails (metrics or traces unreadable) leaves its charts empty with the
    reason; the report is still written, since it matters most when something went wrong.
    """
    records = deployment_records(history, state.id)
    t0 = records[0].ts if records else state.updated_at
    t1 = max(records[-1].ts if records else now, t0 + 1.0)
    samples: dict[Slot, tuple[SlotSample, ...]] = {}
    metrics_error = traces_error = ""
    try:
        samples = {slot: sample(metrics, slot, t0, t1) for slot in (Slot.BLUE, Slot.GREEN)}
    except PipelineError as exc:
        metrics_error = exc.message
    worst: dict[Slot, Slowest | None] | None = None
    if traces is not None:
        try:
            worst = {slot: slowest(traces.traces(t0, t1, slot)) for slot in (Slot.BLUE, Slot.GREEN)}
        except PipelineError as exc:
            traces_error = exc.message
    return DeploymentReport(state, records, t0, t1, samples, worst, metrics_error, traces_error)
