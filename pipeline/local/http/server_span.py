"""The router's server span, recorded without the SDK's per-span machinery.

The router starts and ends one span per request on its data loop, where every microsecond
counts. The SDK's ``Tracer.start_span`` builds a mutable ``Span`` (a lock, bounded
attribute containers that validate each value, ``on_start`` calls) and copies it into a
``ReadableSpan`` when it ends. ``ServerSpan`` makes the same decisions with the same parts of
the tracer (its sampler, id generator, resource and span processors) but keeps only what
the router needs: it samples and makes the span context when it starts, and hands one
``ReadableSpan`` to the tracer's processors when it ends (the batch processors queue it; the
export runs on their thread). Spans that the sampler drops are not recorded, but their
context still goes upstream, exactly as with the SDK.

What differs from ``Tracer.start_span``: processors get no ``on_start`` call (the batch
processors ignore it), and the attributes are not validated one by one: the router sets
only strings, numbers and booleans, a dozen of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from multidict import MultiMapping
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Tracer
from opentelemetry.sdk.trace.sampling import DEFAULT_ON, Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

_UNSET = Status(StatusCode.UNSET)
_SCOPE = InstrumentationScope("pipeline.local.router")
_ROOT = INVALID_SPAN_CONTEXT  # the "parent" of a root span
_SAMPLED_RANDOM = TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID
_FLAGS = [f"{n:02x}" for n in range(256)]  # trace flags as traceparent writes them
_TRACEPARENT = re.compile(TraceContextTextMapPropagator._TRACEPARENT_HEADER_FORMAT)
_MAX_TRACEPARENT = 512
_MAX_TRACESTATE = 512


def parent_of(headers: Mapping[str, str]) -> SpanContext | None:
    """The remote parent that W3C ``traceparent``/``tracestate`` headers name, or None (no
    header, or a malformed one: the request then starts a new trace).

    The rules and the pattern are ``TraceContextTextMapPropagator.extract``'s (version 00
    takes nothing after the flags, ``ff`` is invalid, all-zero ids are invalid, headers
    over 512 characters are ignored); this returns the span context itself instead of a
    ``Context`` holding a non-recording span, which the router would unwrap at once."""
    header = headers.get("traceparent")
    if not header or len(header) > _MAX_TRACEPARENT:
        return None
    match = _TRACEPARENT.search(header)
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if trace_id == "0" * 32 or span_id == "0" * 16 or version == "ff" or (version == "00" and rest):
        return None
    state = None
    if isinstance(headers, MultiMapping):
        states = headers.getall("tracestate", [])
    else:
        states = [headers["tracestate"]] if "tracestate" in headers else []
    if states and sum(len(s) for s in states) + len(states) - 1 <= _MAX_TRACESTATE:
        state = TraceState.from_header(states)
    return SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True,
                       trace_flags=TraceFlags(int(flags, 16)), trace_state=state)


class ServerSpan:
    """One server span named ``name``, child of the span ``parent`` carries (if any)."""

    __slots__ = ("_flags", "_parent", "_recording", "_sampled_attributes", "_span_id", "_trace_id",
                 "_trace_state", "_tracer", "name", "span_hex", "trace_hex")

    def __init__(self, tracer: Tracer, name: str, parent: SpanContext | None) -> None:
        """``parent``: the span context the request's headers carry (``parent_of``), or None."""
        self._tracer = tracer
        self.name = name
        ids = tracer.id_generator
        if parent is None and tracer.sampler is DEFAULT_ON:  # a new trace, sampled: most requests
            self._parent = None
            self._recording = True
            self._trace_state = None
            self._sampled_attributes: Mapping[str, AttributeValue] | None = None
            self._flags = _SAMPLED_RANDOM if ids.is_trace_id_random() else TraceFlags.SAMPLED
            self._trace_id = trace_id = ids.generate_trace_id()
            self._span_id = span_id = ids.generate_span_id()
            self.trace_hex = format(trace_id, "032x")
            self.span_hex = format(span_id, "016x")
            return
        parent_span = parent if parent is not None else _ROOT
        valid = parent_span.is_valid
        self._parent = parent_span if valid else None
        trace_id = parent_span.trace_id if valid else ids.generate_trace_id()
        if tracer.sampler is DEFAULT_ON:
            # the SDK's default, ParentBased(ALWAYS_ON): a root is sampled, a child follows its
            # parent's flag and keeps its trace state (what its should_sample decides, inline)
            sampled = parent_span.trace_flags.sampled if valid else True
            self._recording = sampled
            self._trace_state = parent_span.trace_state if valid else None
            self._sampled_attributes = None
        else:
            context = set_span_in_context(NonRecordingSpan(parent)) if parent is not None else Context()
            sampling = tracer.sampler.should_sample(context, trace_id, name, SpanKind.SERVER)
            sampled = sampling.decision is Decision.RECORD_AND_SAMPLE
            self._recording = sampling.decision is not Decision.DROP
            self._trace_state = sampling.trace_state
            self._sampled_attributes = sampling.attributes
        flags = TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT
        if (parent_span.trace_flags.random_trace_id if valid else ids.is_trace_id_random()):
            flags |= TraceFlags.RANDOM_TRACE_ID
        self._flags = flags
        self._trace_id = trace_id
        self._span_id = ids.generate_span_id()
        self.trace_hex = format(trace_id, "032x")
        self.span_hex = format(self._span_id, "016x")

    @property
    def context(self) -> SpanContext:
        """This span's context (built when asked: the store path needs only the hex ids)."""
        return SpanContext(self._trace_id, self._span_id, is_remote=False,
                           trace_flags=TraceFlags(self._flags), trace_state=self._trace_state)

    @property
    def recording(self) -> bool:
        """Whether the sampler kept this span (a dropped one is not stored or exported)."""
        return self._recording

    def ids(self) -> tuple[str, str, str | None]:
        """Trace id, span id and parent span id (None for a root) in lower-case hex."""
        parent = format(self._parent.span_id, "016x") if self._parent is not None else None
        return self.trace_hex, self.span_hex, parent

    def inject(self, headers: dict[str, str]) -> None:
        """Set W3C ``traceparent`` (and ``tracestate`` when there is one) naming this span, as
        ``TraceContextTextMapPropagator.inject`` writes them (version 00; a fixed format)."""
        headers["traceparent"] = f"00-{self.trace_hex}-{self.span_hex}-{_FLAGS[self._flags]}"
        if self._trace_state:
            headers["tracestate"] = self._trace_state.to_header()

    def attributes_with(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """``attributes`` after the sampler's own (a span's value wins)."""
        return {**self._sampled_attributes, **attributes} if self._sampled_attributes else attributes

    def end(self, start_ns: int, end_ns: int, attributes: Mapping[str, AttributeValue],
            error: str | None = None) -> None:
        """Hand the finished span to the tracer's processors (nothing when it is not sampled);
        ``error`` sets the span's status to ERROR with that description."""
        if not self._recording:
            return
        if self._sampled_attributes:
            attributes = {**self._sampled_attributes, **attributes}
        tracer = self._tracer
        span = ReadableSpan(
            name=self.name, context=self.context, parent=self._parent, resource=tracer.resource,
            attributes=attributes, kind=SpanKind.SERVER, start_time=start_ns, end_time=end_ns,
            status=Status(StatusCode.ERROR, error) if error is not None else _UNSET,
            instrumentation_scope=_SCOPE,
        )
        tracer.span_processor.on_end(span)
