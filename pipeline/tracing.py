"""OpenTelemetry set-up for a process of the toolkit: where its spans go, and W3C propagation.

``setup(service)`` builds a ``TracerProvider`` whose resource names the service (and, when
given, its slot and release) and whose exporters are, each in its own batch processor:

- OTLP/HTTP to a collector when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, or ``otlp_endpoint`` is given (config
  ``observability.otlp_endpoint``): Jaeger, Tempo, the ADOT collector, ...;
- OTLP/HTTP to the local plane's receiver when ``PIPELINE_TRACES_ENDPOINT`` is set (the plane
  sets it, with ``PIPELINE_TRACES_KEY``, for every replica and Lambda worker it starts);
- any ``exporters`` passed in (the plane exports its own spans straight into its store).

With none of them the provider is not built and ``setup`` returns None: the OpenTelemetry
API then hands out non-recording spans, which cost a few attribute look-ups. So does
``PIPELINE_TRACING=off``. Export never blocks the traced code: spans are queued and sent
by a background thread, and a queue that is full drops spans rather than wait.

Context crosses process boundaries as W3C ``traceparent``/``tracestate`` headers
(``inject``/``extract``; the global propagator is set to trace context).

Trace ids are AWS X-Ray's (``AwsXRayIdGenerator``: the first 32 bits are the epoch second,
the other 96 random), so a trace started by the toolkit is also a valid X-Ray trace, and the
local span store's index on trace ids grows at its end instead of at random places.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping, Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PLANE_ENDPOINT_ENV = "PIPELINE_TRACES_ENDPOINT"
"""The local plane's OTLP/HTTP traces URL (``http://127.0.0.1:<port>/otlp/v1/traces``)."""
PLANE_KEY_ENV = "PIPELINE_TRACES_KEY"
"""The key the plane's receiver asks for, sent as ``KEY_HEADER``."""
KEY_HEADER = "X-Pipeline-Spans-Key"
SWITCH_ENV = "PIPELINE_TRACING"
"""``off`` turns tracing off in every process that reads it (the plane passes it on)."""
COLLECTOR_ENVS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
SLOT_KEY = "pipeline.slot"
RELEASE_KEY = "pipeline.release"

_PROPAGATOR = TraceContextTextMapPropagator()
propagate.set_global_textmap(_PROPAGATOR)


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(SWITCH_ENV, "").strip().lower() not in ("off", "0", "false", "no")


def exporters_from(environ: Mapping[str, str] | None = None,
                   otlp_endpoint: str | None = None) -> list[SpanExporter]:
    """The OTLP/HTTP exporters ``environ`` (default ``os.environ``) and ``otlp_endpoint`` ask for."""
    env = os.environ if environ is None else environ
    found: list[SpanExporter] = []
    collector = otlp_endpoint or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not collector and env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        collector = env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    if collector:
        found.append(OTLPSpanExporter(endpoint=collector, timeout=5))
    plane = env.get(PLANE_ENDPOINT_ENV)
    if plane:
        found.append(OTLPSpanExporter(endpoint=plane, timeout=5,
                                      headers={KEY_HEADER: env.get(PLANE_KEY_ENV, "")}))
    return found


def setup(service: str, *, slot: str | None = None, release: str | None = None,
          otlp_endpoint: str | None = None, exporters: Sequence[SpanExporter] = (),
          environ: Mapping[str, str] | None = None, set_global: bool = True,
          schedule_delay_ms: float = 500, bare: bool = False) -> TracerProvider | None:
    """A provider exporting ``service``'s spans (see the module docstring), or None when
    tracing is off or nothing would receive them (with ``bare``, a provider with no span
    processor then: its spans are sampled and given ids, and the caller stores them).
    ``set_global`` installs it as the process's provider (``opentelemetry.trace.get_tracer``
    then uses it)."""
    if not enabled(environ):
        return None
    chosen = [*exporters, *exporters_from(environ, otlp_endpoint)]
    if not chosen and not bare:
        return None
    attributes: dict[str, str] = {"service.name": service}
    if slot:
        attributes[SLOT_KEY] = slot
    if release:
        attributes[RELEASE_KEY] = release
        attributes["service.version"] = release
    provider = TracerProvider(resource=Resource.create(attributes), id_generator=AwsXRayIdGenerator())
    for exporter in chosen:
        provider.add_span_processor(BatchSpanProcessor(
            exporter, max_queue_size=8192, schedule_delay_millis=schedule_delay_ms,
            max_export_batch_size=512))
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def inject(headers: MutableMapping[str, str], context: Context | None = None) -> None:
    """Write ``traceparent``/``tracestate`` of ``context`` (default: the current span) into ``headers``."""
    _PROPAGATOR.inject(headers, context=context)


def extract(headers: Mapping[str, str]) -> Context:
    """The context ``headers`` carry (an empty one when they carry none, or a malformed one)."""
    return _PROPAGATOR.extract(headers)


def trace_id_of(span: trace.Span) -> str:
    """The span's trace id as 32 lower-case hex digits (``pipeline trace show`` takes it)."""
    return format(span.get_span_context().trace_id, "032x")
