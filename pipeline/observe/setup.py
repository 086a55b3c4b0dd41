"""Where the spans of pipeline runs go, and which trace a run joins.

``run_tracer`` builds a ``TracerProvider`` (service ``pipeline``) for this process with:

- OTLP/HTTP to a collector when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set or the environment's config has
  ``observability: {otlp: URL}`` (``pipeline.tracing.exporters_from``);
- any ``exporters`` given (the composition root adds the local plane's span store).

Spans are exported in batches by one background thread per provider (a span store write
costs a disk sync, ~10 ms: not on the engine's path) and flushed when each run ends.

With none of them, or with ``PIPELINE_TRACING=off``, there is no tracer and runs are not
traced. A run's root span continues the trace of ``TRACEPARENT`` (W3C) when it is set. In a
GitHub Actions job without ``TRACEPARENT``, every root span of the process is given the
trace id ``github_trace_id`` derives from the repository, run id and attempt, so every job
of one workflow run lands in one trace.
"""

from __future__ import annotations

import atexit
import hashlib
import os
from collections.abc import Mapping, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

from pipeline import __version__, tracing
from pipeline.core.ports import Clock
from pipeline.observe.spans import RunTracer

SERVICE_NAME = "pipeline"
FLUSH_MS = 5000  # at most this long at the end of a run to hand its spans over
EXPORT_EVERY_MS = 5000  # between batches during a run (each run also flushes when it ends)
_CI = {"GITHUB_WORKFLOW": "ci.workflow", "GITHUB_JOB": "ci.job", "GITHUB_RUN_ID": "ci.run_id",
       "GITHUB_RUN_ATTEMPT": "ci.run_attempt", "GITHUB_REPOSITORY": "ci.repository"}


def github_trace_id(environ: Mapping[str, str]) -> int | None:
    """The trace id of a GitHub Actions workflow run (same for all its jobs and steps), from
    ``GITHUB_REPOSITORY``, ``GITHUB_RUN_ID`` and ``GITHUB_RUN_ATTEMPT``; None outside one."""
    run = environ.get("GITHUB_RUN_ID", "")
    if environ.get("GITHUB_ACTIONS") != "true" or not run:
        return None
    seed = f"{environ.get('GITHUB_REPOSITORY', '')}/{run}/{environ.get('GITHUB_RUN_ATTEMPT', '1')}"
    return int(hashlib.sha256(seed.encode()).hexdigest()[:32], 16) or 1


def traceparent_of(trace_id: int, span_id: int = 1) -> str:
    """A W3C ``traceparent`` value (sampled) naming ``trace_id``."""
    return f"00-{trace_id:032x}-{span_id:016x}-01"


class _OneTrace(RandomIdGenerator):
    """Root spans of this process all get ``trace_id``; span ids stay random."""

    def __init__(self, trace_id: int) -> None:
        self._trace_id = trace_id

    def generate_trace_id(self) -> int:
        return self._trace_id


def parent_context(environ: Mapping[str, str]) -> Context | None:
    """The context ``TRACEPARENT``/``TRACESTATE`` carry (None when unset or malformed)."""
    value = environ.get("TRACEPARENT", "").strip()
    if not value:
        return None
    context = tracing.extract({"traceparent": value, "tracestate": environ.get("TRACESTATE", "")})
    return context or None


def run_tracer(clock: Clock, *, otlp_endpoint: str | None = None, exporters: Sequence[SpanExporter] = (),
               environ: Mapping[str, str] | None = None) -> RunTracer | None:
    """A ``RunTracer`` exporting as the module docstring says, or None when nothing would
    receive its spans. The provider is shut down (spans flushed) at process exit."""
    env = os.environ if environ is None else environ
    if not tracing.enabled(env):
        return None
    remote = tracing.exporters_from(env, otlp_endpoint)
    if not exporters and not remote:
        return None
    attributes: dict[str, str] = {"service.name": SERVICE_NAME, "service.version": __version__}
    attributes.update({key: env[name] for name, key in _CI.items() if env.get(name)})
    github = github_trace_id(env)
    parent = parent_context(env)
    ids = _OneTrace(github) if github is not None and parent is None else RandomIdGenerator()
    provider = TracerProvider(resource=Resource.create(attributes), id_generator=ids)
    for exporter in [*exporters, *remote]:  # batched off the engine's thread, flushed as each run ends
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=EXPORT_EVERY_MS))
    atexit.register(provider.shutdown)
    return RunTracer(provider.get_tracer("pipeline.observe"), clock, parent=parent,
                     flush=lambda: provider.force_flush(FLUSH_MS))
