"""Deployments as traces: a run of the engine with the fakes, recorded by the OpenTelemetry SDK.

One root span per run, a child span per action the engine ran through the ports and per
wait (pauses, readiness and analysis waits), all in one trace whose id the history keeps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from pipeline.core.errors import LockHeldError, TransientPlatformError
from pipeline.core.model import Measurement, Slot
from pipeline.core.state import Phase
from pipeline.observe import setup
from pipeline.observe.spans import RunTracer
from pipeline.operations import Context, deploy
from pipeline.testing import FakeClock, release
from tests.unit.support.engine import CANARY, REF, World, stable_world

# the fakes' call log -> the action kind that made the call
CALL_KINDS = {"provision": "provision", "health": "await_ready", "set_weights": "set_traffic",
              "get_weights": "verify_traffic", "stage": "run_stage", "scale_down": "scale_down"}


def _traced(world: World) -> tuple[Context, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = RunTracer(provider.get_tracer("test"), world.clock)
    return replace(world.ctx(), observer=tracer), exporter


def _seconds(span: ReadableSpan) -> float:
    assert span.start_time is not None and span.end_time is not None
    return (span.end_time - span.start_time) / 1e9


def test_a_canary_gives_one_trace_with_a_span_per_action_and_per_wait() -> None:
    world, _ = stable_world()
    ctx, exporter = _traced(world)
    state = deploy(ctx, REF, release("v2"), CANARY)
    assert state.phase is Phase.SUCCEEDED

    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.parent is None]
    assert [r.name for r in roots] == ["deploy orders"]
    root = roots[0]
    assert root.attributes is not None
    assert root.attributes["pipeline.service"] == "orders"
    assert root.attributes["pipeline.environment"] == "staging"
    assert root.attributes["pipeline.deployment"] == state.id
    assert root.attributes["pipeline.release"] == "v2"
    assert root.attributes["pipeline.outcome"] == "succeeded"
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    children = [s for s in spans if s is not root]
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in children)

    actions = [s for s in children if not s.name.startswith("wait ")]
    kinds = Counter(str((s.attributes or {})["pipeline.action"]) for s in actions)
    calls = world.platform.log.calls
    expected = Counter(CALL_KINDS[c.split()[0]] for c in calls if c.split()[0] in CALL_KINDS)
    expected["measure"] = calls.count("measure green")  # one Measure asks for both slots
    assert kinds == expected
    for span in actions:
        attributes = span.attributes or {}
        assert attributes["pipeline.outcome"] == "ok"
        assert attributes["pipeline.deployment"] == state.id
        assert span.name == attributes["pipeline.action"]

    waits = [s for s in children if s.name.startswith("wait ")]
    holds = [s for s in waits if (s.attributes or {})["pipeline.wait"] == "hold"]
    assert [_seconds(s) for s in holds][:2] == [60.0, 60.0]  # the canary's two pauses, on the engine's clock
    assert all((s.attributes or {})["pipeline.deployment"] == state.id for s in waits)
    starts = sorted(s.start_time or 0 for s in children)
    assert (root.start_time or 0) <= starts[0] and starts[-1] <= (root.end_time or 0)

    trace_id = format(root.context.trace_id, "032x")
    records = [r for r in world.store.history(REF) if r.deployment == state.id]
    assert records and all(r.data.get("trace_id") == trace_id for r in records)
    outcome = [r for r in records if r.action == "deployment.succeeded"]
    assert outcome[0].data["release"]["version"] == "v2"  # the outcome data is kept beside the id


def test_a_failed_action_and_a_rollback_are_errors_in_the_trace() -> None:
    world, _ = stable_world()
    ctx, exporter = _traced(world)
    world.platform.metrics.per_slot[Slot.GREEN] = Measurement(requests=200, errors=40, p95_ms=30)
    original = world.platform.compute.scale_down
    failed: list[Slot] = []

    def scale_down(slot: Slot) -> None:
        if not failed:
            failed.append(slot)
            raise TransientPlatformError("cannot scale down: the fake refuses once")
        original(slot)

    world.platform.compute.scale_down = scale_down  # type: ignore[method-assign]
    state = deploy(ctx, REF, release("v2"), CANARY)
    assert state.phase is Phase.ROLLED_BACK

    spans = exporter.get_finished_spans()
    root = next(s for s in spans if s.parent is None)
    assert root.status.status_code is StatusCode.ERROR
    assert (root.attributes or {})["pipeline.outcome"] == state.phase.value
    errors = [s for s in spans if (s.attributes or {}).get("pipeline.outcome") == "error"]
    assert [s.name for s in errors] == ["scale_down"]
    assert errors[0].status.status_code is StatusCode.ERROR
    assert "the fake refuses once" in str((errors[0].attributes or {})["pipeline.error"])
    assert any(e.name.startswith("rolling back to v1") and "analysis failed" in e.name for e in root.events)


def test_without_an_observer_records_carry_no_trace_id() -> None:
    world, _ = stable_world()
    deploy(world.ctx(), REF, release("v2"), CANARY)
    assert all("trace_id" not in r.data for r in world.store.history(REF))


def test_a_github_actions_run_puts_every_job_in_one_trace() -> None:
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/shop", "GITHUB_RUN_ID": "4242",
               "GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "deploy-staging"}
    expected = setup.github_trace_id(environ)
    assert expected is not None
    assert setup.github_trace_id({**environ, "GITHUB_JOB": "load"}) == expected
    assert setup.github_trace_id({**environ, "GITHUB_RUN_ATTEMPT": "2"}) != expected
    world = World(clock=FakeClock())
    exporter = InMemorySpanExporter()
    tracer = setup.run_tracer(world.clock, exporters=[exporter], environ=environ)
    assert tracer is not None
    deploy(replace(world.ctx(), observer=tracer), REF, release("v1"), CANARY)
    spans = exporter.get_finished_spans()  # flushed when the run ended
    assert spans and {s.context.trace_id for s in spans} == {expected}
    root = next(s for s in spans if s.parent is None)
    assert root.resource.attributes["ci.job"] == "deploy-staging"


def test_traceparent_makes_the_run_a_child_of_the_callers_span() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    exporter = InMemorySpanExporter()
    world = World()
    tracer = setup.run_tracer(world.clock, exporters=[exporter], environ={"TRACEPARENT": parent})
    assert tracer is not None
    deploy(replace(world.ctx(), observer=tracer), REF, release("v1"), CANARY)
    spans = exporter.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in spans} == {"0af7651916cd43dd8448eb211c80319c"}
    run = next(s for s in spans if s.name == "deploy orders")
    assert run.parent is not None and format(run.parent.span_id, "016x") == "b7ad6b7169203331"


@pytest.mark.parametrize("environ", [{}, {"PIPELINE_TRACING": "off", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}])
def test_no_tracer_when_nothing_would_receive_spans_or_tracing_is_off(environ: dict[str, str]) -> None:
    assert setup.run_tracer(FakeClock(), environ=environ) is None


def test_a_command_without_a_deployment_is_a_root_span_with_its_facts() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    clock = FakeClock()
    tracer = RunTracer(provider.get_tracer("test"), clock)
    with tracer.command("loadtest orders", {"pipeline.service": "orders"}) as facts:
        clock.advance(30)
        facts.update({"pipeline.outcome": "passed", "load.requests": 1200})
    with pytest.raises(KeyboardInterrupt), tracer.command("loadtest orders", {}):
        raise KeyboardInterrupt
    done, interrupted = exporter.get_finished_spans()
    assert done.parent is None and _seconds(done) == 30.0
    assert dict(done.attributes or {}) == {"pipeline.service": "orders", "pipeline.outcome": "passed",
                                           "load.requests": 1200}
    assert interrupted.status.status_code is StatusCode.ERROR


def test_a_run_that_finds_the_lock_held_elsewhere_is_locked_not_an_error() -> None:
    world, _ = stable_world()
    ctx, exporter = _traced(world)
    holder = world.store.acquire(REF, "bob@elsewhere:1", 300)  # a live run elsewhere
    with pytest.raises(LockHeldError):
        deploy(ctx, REF, release("v2"), CANARY)
    world.store.release(holder)
    (run,) = exporter.get_finished_spans()
    assert run.name == "deploy orders"
    assert (run.attributes or {})["pipeline.outcome"] == "locked"
    assert (run.attributes or {})["pipeline.holder"] == "bob@elsewhere:1"
    assert run.status.status_code is StatusCode.UNSET


def test_a_run_inside_a_command_span_is_its_child_even_with_a_traceparent() -> None:
    world, _ = stable_world()
    ctx, exporter = _traced(world)
    commands = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(commands))
    caller = setup.parent_context({"TRACEPARENT": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    command = RunTracer(provider.get_tracer("cli"), world.clock, parent=caller)
    with command.command("pipeline deploy", {}):
        token = context.attach(trace.set_span_in_context(command.current()))
        try:
            deploy(ctx, REF, release("v2"), CANARY)
        finally:
            context.detach(token)
    (cli,) = commands.get_finished_spans()
    assert cli.parent is not None and format(cli.parent.span_id, "016x") == "b7ad6b7169203331"
    run = next(s for s in exporter.get_finished_spans() if s.name == "deploy orders")
    assert run.parent is not None and run.parent.span_id == cli.context.span_id
    assert run.context.trace_id == cli.context.trace_id
