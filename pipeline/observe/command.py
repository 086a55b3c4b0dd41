"""A root span for every ``pipeline`` command when spans go to a collector.

``command_trace()`` wraps one CLI invocation: when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``..._TRACES_ENDPOINT``) is set, it records a span ``pipeline <command>`` (continuing
``TRACEPARENT``, or the GitHub Actions run's trace) and makes it the current span, so the
deployment runs of the command are its children. Every job of a workflow that runs
``pipeline`` commands (test, build, push, deploy, load, handoff, ...) thus has its spans
in the run's trace. Without a collector it does nothing (the local span store keeps only
deployment runs, whose root spans are then the runs themselves).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context, trace

from pipeline.core.ports import Clock
from pipeline.observe.setup import run_tracer


@contextmanager
def command_trace(clock: Clock, environ: Mapping[str, str] | None = None) -> Iterator[None]:
    """See the module docstring. ``name_command`` names the span once the command is known."""
    tracer = run_tracer(clock, environ=environ)
    if tracer is None:
        yield
        return
    with tracer.command("pipeline", {}) as facts:
        token = context.attach(trace.set_span_in_context(tracer.current()))
        try:
            yield
            facts["pipeline.outcome"] = "ok"
        finally:
            context.detach(token)


def name_command(name: str) -> None:
    """Name the current command span ``pipeline <name>`` (no-op without one)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"pipeline {name}")
        span.set_attribute("pipeline.command", name)
