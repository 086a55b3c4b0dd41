"""The plane's OTLP/HTTP trace receiver and its own tracer provider.

``POST /otlp/v1/traces`` takes what the standard OpenTelemetry OTLP/HTTP exporter sends
(``Content-Type: application/x-protobuf``, an ``ExportTraceServiceRequest``, optionally
gzip-compressed) and stores the spans in the plane's ``SpanStore``. Replicas and Lambda
workers find it in ``PIPELINE_TRACES_ENDPOINT`` and authenticate with
``PIPELINE_TRACES_KEY`` in the ``X-Pipeline-Spans-Key`` header: a key derived from the
plane's token that allows writing spans and nothing else (the control API's token never
reaches a child process).

The plane's own spans go straight into the store: the Lambda runtime's through a
``StoreExporter``, the router's through a ``SpanWriter`` (``router_tracing``).
``PIPELINE_TRACING=off`` in the plane's environment turns both off;
``PIPELINE_SPANS_QUIET`` sets when the router's spans are held back (``spans_quiet``).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import logging
import os
import zlib
from collections.abc import Mapping

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import TracerProvider

from pipeline import tracing
from pipeline.local.environ import env_number
from pipeline.local.span_export import BadOtlpBody, StoreExporter, records_from_otlp
from pipeline.local.span_writer import SpanWriter
from pipeline.local.spans import SpanStore

OTLP_PATH = "/otlp/v1/traces"
SPANS_QUIET_ENV = "PIPELINE_SPANS_QUIET"
DEFAULT_QUIET = 1000.0
MAX_BODY = 16 * 1024 * 1024
STORE_KEY = web.AppKey("spans", SpanStore)
log = logging.getLogger("pipeline.local.plane")


def spans_key(token: str) -> str:
    """The span-writing key of the plane whose control token is ``token``."""
    return hmac.new(token.encode(), b"pipeline-spans", hashlib.sha256).hexdigest()


def export_environment(port: int, token: str) -> None:
    """Publish the receiver to the plane's children (``pipeline.local.environ`` passes these on)."""
    os.environ[tracing.PLANE_ENDPOINT_ENV] = f"http://127.0.0.1:{port}{OTLP_PATH}"
    os.environ[tracing.PLANE_KEY_ENV] = spans_key(token)


def plane_provider(store: SpanStore, service: str = "router") -> TracerProvider | None:
    """A provider of the plane's own spans (the router's, or a Lambda function's invocations),
    exporting into ``store`` and, when one is configured, to the collector; None when
    ``PIPELINE_TRACING=off``. Never installed globally: the router's hook
    (``pipeline.local.http.tracing.use``) and the Lambda runtime receive theirs."""
    return tracing.setup(service, exporters=[StoreExporter(store)], set_global=False,
                         environ={k: v for k, v in os.environ.items() if k != tracing.PLANE_ENDPOINT_ENV})


def router_tracing(store: SpanStore) -> tuple[TracerProvider, SpanWriter, bool] | None:
    """The router's provider, the writer of its spans into ``store``, and whether the
    provider exports them too (to a configured collector); None when ``PIPELINE_TRACING=off``."""
    environ = {k: v for k, v in os.environ.items() if k != tracing.PLANE_ENDPOINT_ENV}
    provider = tracing.setup("router", set_global=False, environ=environ, bare=True)
    if provider is None:
        return None
    return provider, SpanWriter(store, quiet=spans_quiet(os.environ)), bool(tracing.exporters_from(environ))


def spans_quiet(environ: Mapping[str, str]) -> float:
    """``$PIPELINE_SPANS_QUIET``: router spans a second above which the plane holds them back
    while the router is busy (``SpanWriter``'s ``quiet``; default 1000, ``inf`` never holds
    them). ValueError names the variable and the bad value."""
    return env_number(environ, SPANS_QUIET_ENV, DEFAULT_QUIET, zero_ok=True, infinite_ok=True)


def add_receiver(app: web.Application, store: SpanStore, token: str) -> None:
    """Serve ``OTLP_PATH`` on ``app`` (exempt from the control token: see the module docstring)."""
    app[STORE_KEY] = store
    expected = spans_key(token).encode()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(tracing.KEY_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response({"error": "refused: missing or wrong span key",
                                      "hint": f"send the plane's {tracing.PLANE_KEY_ENV} as "
                                              f"{tracing.KEY_HEADER}"}, status=401)
        if request.content_type != "application/x-protobuf":
            return web.json_response({"error": f"unsupported Content-Type {request.content_type!r}",
                                      "hint": "send OTLP protobuf (application/x-protobuf)"}, status=415)
        if (request.content_length or 0) > MAX_BODY:
            return web.json_response({"error": f"body over {MAX_BODY} bytes"}, status=413)
        body = await request.read()
        if len(body) > MAX_BODY:
            return web.json_response({"error": f"body over {MAX_BODY} bytes"}, status=413)
        try:
            records = records_from_otlp(_decoded(body, request.headers.get("Content-Encoding", "")))
            await asyncio.to_thread(store.add, records)
        except (BadOtlpBody, OSError, zlib.error, EOFError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    app.router.add_post(OTLP_PATH, receive)


def _decoded(body: bytes, encoding: str) -> bytes:
    if encoding.lower() == "gzip":
        return gzip.decompress(body)
    if encoding.lower() == "deflate":
        return zlib.decompress(body)
    return body
