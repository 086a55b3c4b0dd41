"""Optional tracing for this service: OpenTelemetry spans when the SDK is installed and a
receiver is configured, nothing at all otherwise (the service stays stdlib-only to run).

Spans go by OTLP/HTTP to ``PIPELINE_TRACES_ENDPOINT`` (the local plane's receiver, with
``PIPELINE_TRACES_KEY``; the plane sets both) and/or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (a
collector: on ECS the ADOT sidecar at ``http://localhost:4318``). The resource names the
service, its slot (``PIPELINE_SLOT``) and release (``PIPELINE_VERSION``). Incoming
``traceparent``/``tracestate`` headers are continued; outgoing calls carry them on. With
``opentelemetry-propagator-aws-xray`` installed (the images install it), an ALB's
``X-Amzn-Trace-Id`` is continued too when no ``traceparent`` came, and outgoing calls carry
both headers.

The same file is shipped in every example service (each image is built from its own folder).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

try:
    from opentelemetry import propagate, trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # an image without the SDK: tracing off
    trace = None  # type: ignore[assignment]
else:
    try:  # behind an ALB: continue its X-Amzn-Trace-Id when the caller sent no traceparent
        from opentelemetry.propagators.aws import AwsXRayPropagator
        from opentelemetry.propagators.composite import CompositePropagator
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        # extraction: the last propagator that finds a context wins, so traceparent comes last
        propagate.set_global_textmap(CompositePropagator([AwsXRayPropagator(),
                                                          TraceContextTextMapPropagator()]))
    except ImportError:  # no X-Ray propagator installed: W3C trace context only
        pass


class _Quiet:
    """Stands in for a span when tracing is off."""

    def set_attribute(self, key: str, value: Any) -> None:
        return None


class Telemetry:
    """The tracer of one service process (see the module docstring)."""

    def __init__(self, service: str, version: str, environ: Mapping[str, str] | None = None,
                 provider: Any = None) -> None:
        """``provider``: a ready ``TracerProvider`` to use instead of the environment's."""
        env = os.environ if environ is None else environ
        if provider is None and trace is not None:
            provider = _provider(service, version, env)
        self.provider = provider
        self._tracer = self.provider.get_tracer(service) if self.provider is not None else None

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    @contextmanager
    def server(self, method: str, route: str, headers: Mapping[str, str]) -> Iterator[Any]:
        """The span of one request (continuing the caller's trace); set its status with
        ``span.set_attribute("http.response.status_code", n)``."""
        if self._tracer is None:
            yield _Quiet()
            return
        parent = propagate.extract(headers)  # http.server's headers: case-insensitive get()
        with self._tracer.start_as_current_span(f"{method} {route}", context=parent, kind=SpanKind.SERVER,
                                                attributes={"http.request.method": method,
                                                            "http.route": route}) as span:
            yield span

    @contextmanager
    def database(self, operation: str, table: str) -> Iterator[Any]:
        """A span around one database call (``db.query``)."""
        if self._tracer is None:
            yield _Quiet()
            return
        with self._tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT, attributes={
                "db.system": "sqlite", "db.operation.name": operation, "db.collection.name": table}) as span:
            yield span

    @contextmanager
    def call(self, service: str, method: str, url: str, headers: dict[str, str]) -> Iterator[Any]:
        """A client span around a call to ``service``; writes the trace headers into ``headers``."""
        if self._tracer is None:
            yield _Quiet()
            return
        with self._tracer.start_as_current_span(f"call {service}", kind=SpanKind.CLIENT, attributes={
                "http.request.method": method, "url.full": url, "peer.service": service}) as span:
            propagate.inject(headers)
            yield span

    def failed(self, span: Any, status: int) -> None:
        """Record ``status`` on ``span`` (an error status from 500 on)."""
        span.set_attribute("http.response.status_code", status)
        if trace is not None and status >= 500 and hasattr(span, "set_status"):
            span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))

    def close(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


def _provider(service: str, version: str, env: Mapping[str, str]) -> Any:
    if env.get("PIPELINE_TRACING", "").lower() in ("off", "0", "false", "no"):
        return None
    exporters = []
    collector = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not collector and env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        collector = env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    if collector:
        exporters.append(OTLPSpanExporter(endpoint=collector, timeout=5))
    if env.get("PIPELINE_TRACES_ENDPOINT"):
        exporters.append(OTLPSpanExporter(endpoint=env["PIPELINE_TRACES_ENDPOINT"], timeout=5, headers={
            "X-Pipeline-Spans-Key": env.get("PIPELINE_TRACES_KEY", "")}))
    if not exporters:
        return None
    attributes = {"service.name": service, "service.version": version, "pipeline.release": version}
    if env.get("PIPELINE_SLOT"):
        attributes["pipeline.slot"] = env["PIPELINE_SLOT"]
    provider = TracerProvider(resource=Resource.create(attributes))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    return provider
