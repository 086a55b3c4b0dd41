"""The router's span per request, and the trace context it sends upstream.

Every routed request starts a trace, or continues the one its ``traceparent`` names, with a
server span ``<METHOD> <rule>`` of service ``router`` carrying the environment, service,
slot, release, HTTP status, latency (ms), ``pipeline.cold_start`` and ``pipeline.throttled``
(a 429: the edge's throttle or a Lambda throttle). Behind a service's edge the span starts
before it, so its refusals and cache hits (``pipeline.cache``) are traced too.
The request goes upstream with ``traceparent``/``tracestate`` naming that span, so the
replica's (or Lambda function's) spans are its children.

Off until the plane hands a provider to ``use`` (it does unless ``PIPELINE_TRACING=off``);
while off, ``begin`` returns None and the request's own trace headers pass through as sent.

Where spans go: the provider decides sampling and ids; a finished span is written as a row
to the plane's span store through a ``SpanWriter`` (a deque and a thread of its own), and is
handed to the provider's span processors only when it has some (a configured collector).
Per request, the router thus builds no SDK span object and no export record on its loop.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from opentelemetry.sdk.trace import Tracer, TracerProvider

from pipeline import tracing
from pipeline.local.http.server_span import ServerSpan, parent_of
from pipeline.local.messages import Answer, Request
from pipeline.local.span_writer import SpanWriter
from pipeline.local.spans import row_of

TRACE_HEADERS = ("traceparent", "tracestate")
CACHE_HEADER = "x-cache"  # the edge's cache verdict (pipeline.local.http.edge)


class _Tracing:
    """What ``use`` set: the tracer, the store's writer, whether processors want spans too."""

    __slots__ = ("forward", "service", "tracer", "writer")

    def __init__(self, tracer: Tracer, writer: SpanWriter | None, forward: bool) -> None:
        self.tracer = tracer
        self.writer = writer
        self.forward = forward
        self.service = str(tracer.resource.attributes.get("service.name", "router"))


_state: dict[str, _Tracing] = {}


def use(provider: TracerProvider | None, writer: SpanWriter | None = None, *, forward: bool = True) -> None:
    """Record spans with ``provider`` from now on (None: stop recording): into ``writer``'s
    store, and through the provider's span processors when ``forward``."""
    if provider is None:
        _state.pop("on", None)
    else:
        tracer = provider.get_tracer("pipeline.local.router")
        if isinstance(tracer, Tracer):  # not the no-op one of OTEL_SDK_DISABLED
            _state["on"] = _Tracing(tracer, writer, forward)


def writer_stats() -> dict[str, int] | None:
    """The span writer's counts (``SpanWriter.stats``: written, queued, dropped, held), or
    None while the router records no spans into a store."""
    on = _state.get("on")
    return on.writer.stats() if on is not None and on.writer is not None else None


def store_held(timeout: float = 10.0) -> dict[str, int] | None:
    """Store the spans the writer holds back now (``SpanWriter.store_now``), waiting at most
    ``timeout`` seconds; its counts after, or None while no spans go into a store. Blocks:
    call it off the data loop."""
    on = _state.get("on")
    if on is None or on.writer is None:
        return None
    on.writer.store_now(timeout)
    return on.writer.stats()


class RequestTrace:
    """The router's span of one request; ``headers`` are the trace headers to send upstream."""

    __slots__ = ("_ended", "_environment", "_method", "_on", "_path", "_service", "_started",
                 "_started_ns", "headers", "span")

    def __init__(self, on: _Tracing, request: Request, environment: str, service: str,
                 rule: str) -> None:
        self._on = on
        method = self._method = request.method
        self._path = request.path
        self._environment = environment
        self._service = service
        headers = request.headers
        parent = parent_of(headers) if "traceparent" in headers else None  # a case-insensitive mapping
        self.span = span = ServerSpan(on.tracer, f"{method} {rule}", parent)  # the SDK's sampling, lean
        self.headers: dict[str, str] = {}
        span.inject(self.headers)
        self._started_ns = time.time_ns()
        self._started = time.monotonic()
        self._ended = False

    def forwarded(self, request: Request) -> Request:
        """``request`` with this span's trace headers in place of the client's."""
        headers = request.headers.copy()
        for name in TRACE_HEADERS:
            headers.popall(name, None)
        headers.update(self.headers)
        return request.with_headers(headers)

    def end(self, status: int, *, slot: str | None = None, release: str | None = None,
            answer: Mapping[str, str] | None = None) -> None:
        """Finish the span with the answer's ``status`` (and, from a Lambda answer's headers,
        its version and cold start; from the edge's, its cache verdict). Only the first call
        counts. The attributes are built here, once, in one dict display (the cheapest way)."""
        if self._ended:
            return
        self._ended = True
        span = self.span
        if not span.recording:
            return  # a span the sampler dropped: its context went upstream, nothing else to do
        cold, cache = False, None
        if answer is not None:
            release = release or answer.get("X-Lambda-Version")
            cold = answer.get("X-Lambda-Cold-Start") == "1"
            cache = answer.get(CACHE_HEADER)
        attributes: dict[str, str | int | float | bool] = {
            "http.request.method": self._method, "url.path": self._path,
            "pipeline.environment": self._environment, "pipeline.service": self._service,
            "http.response.status_code": status,
            "pipeline.latency_ms": round((time.monotonic() - self._started) * 1000.0, 3),
            "pipeline.cold_start": cold, "pipeline.throttled": status == 429}
        if slot:
            attributes[tracing.SLOT_KEY] = slot
        if release:
            attributes[tracing.RELEASE_KEY] = release
        if cache:
            attributes["pipeline.cache"] = cache
        ended_ns = time.time_ns()
        error = f"HTTP {status}" if status >= 500 else None
        on = self._on
        if on.writer is not None:
            on.writer.put(row_of(*span.ids(), span.name, on.service, self._started_ns / 1e9, ended_ns / 1e9,
                                 "error" if error else "unset", span.attributes_with(attributes)))
        if on.forward:
            span.end(self._started_ns, ended_ns, attributes, error)


def ended(traced: RequestTrace | None, answer: Answer) -> Answer:
    """``answer`` (the router's own), after finishing ``traced`` with its status."""
    if traced is not None:
        traced.end(answer.status)
    return answer


def begin(request: Request, environment: str, service: str, rule: str) -> RequestTrace | None:
    """The span of ``request`` routed by ``rule`` to ``service``; None while tracing is off."""
    on = _state.get("on")
    return RequestTrace(on, request, environment, service, rule) if on is not None else None
