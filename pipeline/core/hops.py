"""Where a request's time goes: per-hop figures from traces, and which hops grew (pure).

A *trace* is the spans of one request: any objects of the ``Span`` shape (the local span
store's ``SpanRecord`` is one). A *hop* names one kind of span across traces:

- a router span (service ``router`` with a ``pipeline.service`` attribute): ``router -> <service>``;
- a call to another service (a ``peer.service`` attribute): ``<service> -> <peer>``;
- any other span: ``<service> <span name>`` (``catalog db.query``, ``orders GET /orders/quote``).

Per trace, a hop's *time* is the sum of its spans' durations, its *self time* the sum of
their exclusive times: a span's duration minus the union of its children's intervals
(clipped to the span). The self times of a trace add up to its end-to-end time when no two
calls overlap.

Across traces (``profile``): a hop's ``p95_ms`` is the 95th percentile (nearest rank) of its
time over the traces that contain it, ``self_p95_ms`` the same of its self time,
``error_rate`` the share of its spans in error (status error or HTTP 5xx), and ``share`` its
part of the p95 time: its self time summed over the *tail* (the traces whose end-to-end
time is at or above the end-to-end p95) divided by the tail's end-to-end time.

``compare`` judges a release's profile against the stable release's (``HopLimits``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

ROUTER = "router"
SERVICE_KEY = "pipeline.service"
RELEASE_KEY = "pipeline.release"
SLOT_KEY = "pipeline.slot"
PEER_KEY = "peer.service"
STATUS_KEY = "http.response.status_code"


class Span(Protocol):
    """What the maths reads of a span. Times are epoch seconds; ``status`` ``ok``/``error``/``unset``."""

    @property
    def span_id(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def status(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, Any]: ...


Trace = Sequence[Span]


@dataclass(frozen=True, slots=True)
class HopFigures:
    """One hop over many traces (see the module docstring); times in milliseconds."""

    hop: str
    traces: int
    spans: int
    p95_ms: float
    self_p95_ms: float
    share: float
    error_rate: float

    def to_dict(self) -> dict[str, Any]:
        return {"hop": self.hop, "traces": self.traces, "spans": self.spans, "p95_ms": round(self.p95_ms, 3),
                "self_p95_ms": round(self.self_p95_ms, 3), "share": round(self.share, 4),
                "error_rate": round(self.error_rate, 4)}


@dataclass(frozen=True, slots=True)
class Profile:
    """Many traces: how many, their end-to-end p95 and their hops, largest share first."""

    traces: int
    p95_ms: float
    hops: tuple[HopFigures, ...]

    def hop(self, name: str) -> HopFigures | None:
        return next((h for h in self.hops if h.hop == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"traces": self.traces, "p95_ms": round(self.p95_ms, 3),
                "hops": [h.to_dict() for h in self.hops]}


@dataclass(frozen=True, slots=True)
class HopLimits:
    """When a hop counts as grown against the stable release.

    A hop is flagged when its p95 self time grew by at least ``min_growth_ms`` AND either by
    at least ``min_growth_ratio`` of the stable release's (0.5 = +50 %) or its share of the
    p95 time grew by at least ``min_share_growth`` (0.2 = 20 percentage points). The
    milliseconds floor keeps jitter of fast hops from being flagged."""

    min_growth_ms: float = 50.0
    min_growth_ratio: float = 0.5
    min_share_growth: float = 0.2


@dataclass(frozen=True, slots=True)
class HopChange:
    """One hop of a release next to the stable release's (None: the stable one never had it)."""

    hop: str
    canary: HopFigures
    stable: HopFigures | None
    flagged: bool

    @property
    def growth_ms(self) -> float:
        return self.canary.self_p95_ms - (self.stable.self_p95_ms if self.stable else 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"hop": self.hop, "flagged": self.flagged, "growth_ms": round(self.growth_ms, 3),
                "canary": self.canary.to_dict(), "stable": self.stable.to_dict() if self.stable else None}


def hop_of(span: Span) -> str:
    """The hop ``span`` belongs to (see the module docstring)."""
    routed = span.attributes.get(SERVICE_KEY)
    if span.service == ROUTER and routed:
        return f"{ROUTER} -> {routed}"
    peer = span.attributes.get(PEER_KEY)
    if peer:
        return f"{span.service} -> {peer}"
    return f"{span.service} {span.name}"


def failed(span: Span) -> bool:
    status = span.attributes.get(STATUS_KEY)
    return span.status == "error" or (isinstance(status, int | float) and status >= 500)


def duration_ms(span: Span) -> float:
    return max(0.0, (span.end - span.start) * 1000.0)


def self_ms(span: Span, children: Sequence[Span]) -> float:
    """``span``'s duration minus the union of its children's intervals clipped to it."""
    intervals = sorted((max(c.start, span.start), min(c.end, span.end)) for c in children)
    covered, reach = 0.0, span.start
    for start, end in intervals:
        begin = max(start, reach)
        if end > begin:
            covered += end - begin
            reach = end
    return max(0.0, duration_ms(span) - covered * 1000.0)


def end_to_end_ms(trace: Trace) -> float:
    """The root span's duration; the trace's extent when it has several roots (or none)."""
    if not trace:
        return 0.0
    ids = {s.span_id for s in trace}
    roots = [s for s in trace if s.parent_id is None or s.parent_id not in ids]
    if len(roots) == 1:
        return duration_ms(roots[0])
    return max(0.0, (max(s.end for s in trace) - min(s.start for s in trace)) * 1000.0)


@dataclass(frozen=True, slots=True)
class _TraceHops:
    total_ms: float
    time: dict[str, float]
    self_time: dict[str, float]
    spans: dict[str, int]
    errors: dict[str, int]


def _per_trace(trace: Trace) -> _TraceHops:
    children: dict[str, list[Span]] = defaultdict(list)
    for span in trace:
        if span.parent_id is not None:
            children[span.parent_id].append(span)
    time: dict[str, float] = defaultdict(float)
    own: dict[str, float] = defaultdict(float)
    spans: dict[str, int] = defaultdict(int)
    errors: dict[str, int] = defaultdict(int)
    for span in trace:
        hop = hop_of(span)
        time[hop] += duration_ms(span)
        own[hop] += self_ms(span, children.get(span.span_id, ()))
        spans[hop] += 1
        errors[hop] += failed(span)
    return _TraceHops(end_to_end_ms(trace), time, own, spans, errors)


def percentile(values: Sequence[float], q: float = 0.95) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def profile(traces: Sequence[Trace]) -> Profile:
    """The hops of ``traces`` (see the module docstring), largest share of the p95 time first."""
    per = [_per_trace(t) for t in traces if t]
    p95 = percentile([t.total_ms for t in per])
    tail = [t for t in per if t.total_ms >= p95]
    tail_total = sum(t.total_ms for t in tail)
    names = sorted({hop for t in per for hop in t.time})
    figures = []
    for hop in names:
        having = [t for t in per if hop in t.time]
        spans = sum(t.spans[hop] for t in having)
        tail_self = sum(t.self_time.get(hop, 0.0) for t in tail)
        figures.append(HopFigures(
            hop=hop, traces=len(having), spans=spans,
            p95_ms=percentile([t.time[hop] for t in having]),
            self_p95_ms=percentile([t.self_time[hop] for t in having]),
            share=tail_self / tail_total if tail_total > 0 else 0.0,
            error_rate=sum(t.errors[hop] for t in having) / spans if spans else 0.0))
    figures.sort(key=lambda h: (-h.share, -h.self_p95_ms, h.hop))
    return Profile(len(per), p95, tuple(figures))


def compare(canary: Profile, stable: Profile, limits: HopLimits = HopLimits()) -> tuple[HopChange, ...]:
    """Every hop of ``canary`` next to ``stable``'s, flagged per ``limits``; flagged first,
    then by growth of the p95 self time."""
    changes = []
    for figures in canary.hops:
        before = stable.hop(figures.hop)
        base_ms = before.self_p95_ms if before else 0.0
        base_share = before.share if before else 0.0
        growth = figures.self_p95_ms - base_ms
        relative = growth >= limits.min_growth_ratio * base_ms
        shifted = figures.share - base_share >= limits.min_share_growth
        flagged = growth >= limits.min_growth_ms and (relative or shifted)
        changes.append(HopChange(figures.hop, figures, before, flagged))
    changes.sort(key=lambda c: (not c.flagged, -c.growth_ms, c.hop))
    return tuple(changes)


def release_of(trace: Trace, service: str) -> tuple[str, str] | None:
    """(slot, release) of ``service`` that served ``trace``: from the router span that routed
    to it, else from one of the service's own spans; None when the trace did not reach it."""
    for span in trace:
        if span.service == ROUTER and span.attributes.get(SERVICE_KEY) == service:
            release = span.attributes.get(RELEASE_KEY)
            if release:
                return str(span.attributes.get(SLOT_KEY) or ""), str(release)
    for span in trace:
        if span.service == service and span.attributes.get(RELEASE_KEY):
            return str(span.attributes.get(SLOT_KEY) or ""), str(span.attributes[RELEASE_KEY])
    return None
