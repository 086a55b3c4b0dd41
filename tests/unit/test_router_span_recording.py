"""The router's lean span recording keeps the SDK's semantics, and the span store's shared
writer connection survives a failed batch.

``ServerSpan`` replaces ``Tracer.start_span``/``Span.end`` on the router's hot path: these tests
hold it to what the SDK would have exported (parent, ids, flags, status, attributes, scope),
and to the sampler's decisions (a dropped span is not exported, its context still travels).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from multidict import CIMultiDict
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanKind,
    StatusCode,
    TraceFlags,
    get_current_span,
    set_span_in_context,
)

from pipeline import tracing
from pipeline.local.http.server_span import ServerSpan, parent_of
from pipeline.local.spans import SpanRecord, SpanStore

PARENT = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "k=v"}


def traced(sampler: object = None) -> tuple[Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    kwargs = {"sampler": sampler} if sampler is not None else {}
    provider = TracerProvider(resource=Resource.create({"service.name": "router"}), **kwargs)  # type: ignore[arg-type]
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("pipeline.local.router")
    assert isinstance(tracer, Tracer)
    return tracer, exporter


def test_a_span_continues_the_callers_trace_like_the_sdk() -> None:
    tracer, exporter = traced()
    span = ServerSpan(tracer, "GET /orders*", parent_of(PARENT))
    span.end(1_000, 2_000, {"http.response.status_code": 200, "pipeline.slot": "blue"})
    (done,) = exporter.get_finished_spans()
    assert done.context is not None and done.parent is not None
    assert done.context.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    assert done.parent.span_id == 0x00F067AA0BA902B7 and done.parent.is_remote
    assert done.context.span_id == span.context.span_id != done.parent.span_id
    assert done.context.trace_state.get("k") == "v"
    assert done.context.trace_flags.sampled
    assert (done.name, done.kind) == ("GET /orders*", SpanKind.SERVER)
    assert (done.start_time, done.end_time) == (1_000, 2_000)
    assert dict(done.attributes or {}) == {"http.response.status_code": 200, "pipeline.slot": "blue"}
    assert done.status.status_code is StatusCode.UNSET
    assert done.instrumentation_scope is not None
    assert done.instrumentation_scope.name == "pipeline.local.router"
    assert done.resource.attributes["service.name"] == "router"


def test_a_span_without_a_caller_starts_a_trace_and_marks_errors() -> None:
    tracer, exporter = traced()
    span = ServerSpan(tracer, "GET /*", None)
    span.end(1, 2, {}, error="HTTP 502")
    (done,) = exporter.get_finished_spans()
    assert done.parent is None and done.context is not None and done.context.trace_id != 0
    assert done.context.trace_flags & TraceFlags.RANDOM_TRACE_ID  # the SDK's random id flag
    assert (done.status.status_code, done.status.description) == (StatusCode.ERROR, "HTTP 502")


@pytest.mark.parametrize("ids", [RandomIdGenerator(), AwsXRayIdGenerator()], ids=["random", "xray"])
def test_a_new_traces_context_goes_upstream_as_the_propagator_writes_it(ids: IdGenerator) -> None:
    provider = TracerProvider(id_generator=ids)
    tracer = provider.get_tracer("pipeline.local.router")
    assert isinstance(tracer, Tracer)
    span = ServerSpan(tracer, "GET /*", None)
    mine: dict[str, str] = {}
    span.inject(mine)
    theirs: dict[str, str] = {}
    tracing.inject(theirs, set_span_in_context(NonRecordingSpan(span.context)))
    assert mine == theirs
    assert span.context.trace_flags.sampled
    assert bool(span.context.trace_flags & TraceFlags.RANDOM_TRACE_ID) == ids.is_trace_id_random()


def test_the_tracers_sampler_decides_and_a_dropped_span_still_propagates() -> None:
    tracer, exporter = traced(ParentBased(ALWAYS_OFF))
    span = ServerSpan(tracer, "GET /*", None)
    span.end(1, 2, {})
    assert exporter.get_finished_spans() == ()
    assert not span.context.trace_flags.sampled and span.context.is_valid
    carried: dict[str, str] = {}
    tracing.inject(carried, set_span_in_context(NonRecordingSpan(span.context)))
    ids = span.context
    assert carried["traceparent"] == f"00-{ids.trace_id:032x}-{ids.span_id:016x}-02"  # random id, not sampled
    sampled_parent = ServerSpan(tracer, "GET /*", parent_of(PARENT))  # ParentBased: the caller sampled
    sampled_parent.end(1, 2, {})
    assert len(exporter.get_finished_spans()) == 1


def test_a_ratio_sampler_keeps_about_its_share() -> None:
    tracer, exporter = traced(TraceIdRatioBased(0.1))
    for _ in range(2000):
        ServerSpan(tracer, "GET /*", None).end(1, 2, {})
    assert 100 <= len(exporter.get_finished_spans()) <= 300


def record(n: int) -> SpanRecord:
    return SpanRecord(f"{n:032x}", f"{n:016x}", None, "GET /*", "router", 1.0 + n, 2.0 + n)


def test_the_store_keeps_writing_after_a_failed_batch(tmp_path: Path) -> None:
    store = SpanStore(tmp_path / "spans.db")
    store.add([record(1)])

    def broken() -> list[SpanRecord]:
        bad = record(2)
        object.__setattr__(bad, "name", None)  # NOT NULL: the insert fails mid-batch
        return [record(3), bad]

    with pytest.raises(sqlite3.IntegrityError):
        store.add(broken())
    store.add([record(4)])  # the shared connection is not left inside the failed transaction
    assert {s.span_id[-1] for t in ("1", "3", "4") for s in store.trace(t.rjust(32, "0"))} == {"1", "4"}
    assert store.count() == 2


@pytest.mark.parametrize("headers", [
    PARENT,
    {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},  # not sampled
    {"traceparent": "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"},  # a later version
    {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"},  # 00 takes no more
    {"traceparent": "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
    {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"},
    {"traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"},  # upper case
    {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"},
    {"traceparent": "  00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01  "},
    {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "a=1,b=2"},
    {"traceparent": PARENT["traceparent"], "tracestate": "x=" + "y" * 600},
    {"traceparent": "0" * 600},
    {},
])
def test_the_routers_traceparent_reading_agrees_with_the_propagator(headers: dict[str, str]) -> None:
    """``parent_of`` reads the headers as ``TraceContextTextMapPropagator.extract`` does."""
    expected = get_current_span(tracing.extract(headers)).get_span_context()
    found = parent_of(CIMultiDict(headers))
    if not expected.is_valid:
        assert found is None
        return
    assert found is not None
    assert (found.trace_id, found.span_id, found.trace_flags, found.is_remote) == (
        expected.trace_id, expected.span_id, expected.trace_flags, expected.is_remote)
    assert found.trace_state.to_header() == expected.trace_state.to_header()
