"""Spans of the local Lambda runtime: one per invocation, under the function's own name.

Each invocation is a server span ``invoke`` of service ``<function>`` (one tracer provider
per function, so its spans are listed under its name, as X-Ray lists a function's segment)
with ``faas.coldstart``, ``pipeline.cold_start``, ``pipeline.throttled``, the version
(``pipeline.release``), the init time of a cold start and an error status for a function
error, throttle or timeout. It continues the trace of the HTTP event's ``traceparent`` (the
router's span); the handler receives the invocation's context as ``TRACEPARENT`` in its
environment (OpenTelemetry's environment carrier), so code that calls other services can
carry it on.

Off until the plane calls ``use`` with a provider factory (it does unless
``PIPELINE_TRACING=off``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from pipeline import tracing

ProviderFactory = Callable[[str], TracerProvider | None]


class InvocationTracer:
    """Creates each function's provider on its first traced invocation."""

    def __init__(self) -> None:
        self._factory: ProviderFactory | None = None
        self._providers: dict[str, TracerProvider | None] = {}

    def use(self, factory: ProviderFactory | None) -> None:
        self.close()
        self._factory = factory

    @contextmanager
    def invocation(self, function: str, version: str, event: Any) -> Iterator[Span | None]:
        """The span of one invocation (None while off); it is current inside the block."""
        provider = self._provider(function)
        if provider is None:
            yield None
            return
        headers = event.get("headers") if isinstance(event, dict) else None
        parent = tracing.extract({str(k).lower(): str(v) for k, v in headers.items()}
                                 if isinstance(headers, dict) else {})
        tracer = provider.get_tracer("pipeline.local.lambda")
        with tracer.start_as_current_span("invoke", context=parent, kind=SpanKind.SERVER, attributes={
                "faas.name": function, tracing.RELEASE_KEY: version}) as span:
            yield span

    @staticmethod
    def finish(span: Span | None, *, cold_start: bool, throttled: bool, ok: bool, error: str,
               init_ms: float) -> None:
        if span is None:
            return
        span.set_attributes({"faas.coldstart": cold_start, "pipeline.cold_start": cold_start,
                             "pipeline.throttled": throttled, "pipeline.init_ms": round(init_ms, 3)})
        if not ok:
            span.set_status(Status(StatusCode.ERROR, error or "function error"))

    @staticmethod
    def carrier() -> dict[str, str]:
        """The current invocation's ``traceparent`` (and ``tracestate``), for the worker."""
        headers: dict[str, str] = {}
        tracing.inject(headers)
        return headers

    def _provider(self, function: str) -> TracerProvider | None:
        if self._factory is None:
            return None
        if function not in self._providers:
            self._providers[function] = self._factory(function)
        return self._providers[function]

    def close(self) -> None:
        """Flush and stop every provider (spans still queued are exported)."""
        for provider in self._providers.values():
            if provider is not None:
                provider.shutdown()
        self._providers.clear()
