"""Spans into the local span store: from this process's SDK, and from OTLP/HTTP requests.

``StoreExporter`` is an OpenTelemetry ``SpanExporter`` writing finished spans of the plane
process (the router's) straight into its ``SpanStore``. ``records_from_otlp`` decodes an
OTLP/HTTP protobuf body (``ExportTraceServiceRequest``, what the standard exporter of every
language sends) into ``SpanRecord`` values for the plane's receiver.

The resource's ``pipeline.slot`` and ``pipeline.release`` are copied into each span's
attributes (a span's own value wins) so that the store can filter on them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from pipeline.local.spans import RELEASE_KEY, SLOT_KEY, SpanRecord, SpanStore

_INHERITED = (SLOT_KEY, RELEASE_KEY)
_STATUS = {StatusCode.OK: "ok", StatusCode.ERROR: "error", StatusCode.UNSET: "unset"}
_OTLP_STATUS = {1: "ok", 2: "error"}  # opentelemetry.proto.trace.v1.Status.StatusCode


class StoreExporter(SpanExporter):
    """Exports to ``store``; a store that fails (disk full, locked) loses that batch only."""

    def __init__(self, store: SpanStore) -> None:
        self._store = store

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self._store.add(record_of(s) for s in spans)
        except (sqlite3.Error, OSError):  # an exporter must not raise into the SDK's thread
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def record_of(span: ReadableSpan) -> SpanRecord:
    ctx = span.context
    assert ctx is not None
    resource = dict(span.resource.attributes)
    attrs = {k: resource[k] for k in _INHERITED if k in resource}
    attrs.update(_plain(span.attributes or {}))
    parent = format(span.parent.span_id, "016x") if span.parent is not None else None
    return SpanRecord(
        trace_id=format(ctx.trace_id, "032x"), span_id=format(ctx.span_id, "016x"), parent_id=parent,
        name=span.name, service=str(resource.get("service.name", "unknown")),
        start=(span.start_time or 0) / 1e9, end=(span.end_time or span.start_time or 0) / 1e9,
        attributes=attrs, status=_STATUS.get(span.status.status_code, "unset"),
    )


class BadOtlpBody(ValueError):
    """The body is not an OTLP ``ExportTraceServiceRequest`` in protobuf."""


def records_from_otlp(body: bytes) -> list[SpanRecord]:
    """The spans of an OTLP/HTTP protobuf request body; BadOtlpBody when it does not decode."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise BadOtlpBody(f"not an OTLP protobuf trace export: {exc}") from exc
    found: list[SpanRecord] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name", "unknown"))
        inherited = {k: resource[k] for k in _INHERITED if k in resource}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attrs = {**inherited, **_attributes(span.attributes)}
                found.append(SpanRecord(
                    trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                    parent_id=span.parent_span_id.hex() or None, name=span.name, service=service,
                    start=span.start_time_unix_nano / 1e9, end=span.end_time_unix_nano / 1e9,
                    attributes=attrs, status=_OTLP_STATUS.get(span.status.code, "unset"),
                ))
    return found


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind) if kind else None


def _plain(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items()}
