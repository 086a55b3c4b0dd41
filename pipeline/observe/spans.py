"""A deployment run as a trace: a root span per run, a child span per action and per wait.

Span times come from the engine's clock, so a run under a fake clock has the durations the
engine saw. Every span carries the run's service, environment, deployment id and release;
an action span adds its kind and outcome (``ok`` or ``error`` with the message), a wait
span what it waits for. The root span ends with the deployment's phase as its outcome and
an error status when the deployment did not succeed. The notes of the history are events
of the root span.

Observing never fails a run: exceptions of the OpenTelemetry SDK are not expected (it
swallows its own), and exporting happens on a background thread.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from pipeline.core.errors import LockHeldError
from pipeline.core.ports import Clock
from pipeline.core.state import (
    Action,
    AwaitReady,
    DeploymentState,
    Hold,
    Measure,
    Phase,
    RunStage,
    SetTraffic,
)

SERVICE = "pipeline.service"
ENVIRONMENT = "pipeline.environment"
DEPLOYMENT = "pipeline.deployment"
RELEASE = "pipeline.release"  # the same key the span store filters on
DIGEST = "pipeline.digest"
PURPOSE = "pipeline.purpose"
ACTION = "pipeline.action"
WAIT = "pipeline.wait"
OUTCOME = "pipeline.outcome"
SLOT = "pipeline.slot"
PHASE = "pipeline.phase"
FAILED_PHASES = frozenset({Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED})


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def kind_of(action: Action) -> str:
    """``SetTraffic`` -> ``set_traffic``: the action kind, as span names and attributes say it."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(action).__name__).lower()


def wait_kind(action: Action) -> str:
    """What a wait is for: ``continue`` (an open-ended hold), ``hold`` (a pause or bake),
    else the kind of the action that is not due yet (``await_ready``, ``measure``, ...)."""
    if isinstance(action, Hold):
        return "continue" if action.until is None else "hold"
    return kind_of(action)


def run_attributes(state: DeploymentState) -> dict[str, AttributeValue]:
    return {
        SERVICE: state.ref.service,
        ENVIRONMENT: state.ref.environment,
        DEPLOYMENT: state.id,
        RELEASE: state.release.version,
        DIGEST: state.release.digest,
    }


def action_attributes(action: Action) -> dict[str, AttributeValue]:
    found: dict[str, AttributeValue] = {ACTION: kind_of(action)}
    slot = getattr(action, "slot", None)
    if slot is not None:
        found[SLOT] = slot.value
    if isinstance(action, SetTraffic):
        found["pipeline.weights"] = str(action.weights)
    if isinstance(action, RunStage):
        found["pipeline.stage"] = action.stage
    return found


class RunTracer:
    """The ``RunObserver`` that records runs as traces through ``tracer``.

    ``parent`` is the context a run's root span continues (a CI job's ``TRACEPARENT``);
    ``flush`` is called when a run ends (the CLI's short-lived process exports then)."""

    def __init__(self, tracer: trace.Tracer, clock: Clock, *, parent: Context | None = None,
                 flush: Callable[[], object] | None = None) -> None:
        self._tracer = tracer
        self._clock = clock
        self._parent = parent
        self._flush = flush
        self._run: Span | None = None
        self._command: Span | None = None
        self._wait: tuple[Action, Span] | None = None

    def fresh(self, clock: Clock) -> RunTracer:
        """Another tracer on the same provider, for another clock (each keeps its own run)."""
        return RunTracer(self._tracer, clock, parent=self._parent, flush=self._flush)

    @contextmanager
    def run(self, state: DeploymentState, purpose: str) -> Iterator[str]:
        verb = purpose.split(" ", 1)[0] or "run"
        span = self._tracer.start_span(
            f"{verb} {state.ref.service}", context=self._parent_now(),
            start_time=_ns(self._clock.now()), attributes={**run_attributes(state), PURPOSE: purpose})
        self._run = span
        trace_id = format(span.get_span_context().trace_id, "032x") if span.is_recording() else ""
        try:
            yield trace_id
        except LockHeldError as exc:  # a live run elsewhere holds it (and applies a signal sent)
            span.set_attributes({OUTCOME: "locked", "pipeline.holder": exc.holder})
            raise
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            self._end_wait()
            span.end(end_time=_ns(self._clock.now()))
            self._run = None
            if self._flush is not None:
                self._flush()

    @contextmanager
    def command(
        self, name: str, attributes: dict[str, AttributeValue]
    ) -> Iterator[dict[str, AttributeValue]]:
        """A root span for a command that runs no deployment (``pipeline loadtest``): the
        caller adds facts (outcome, figures) to the yielded dict; they are set at the end.
        An exception escaping the block marks the span as an error."""
        span = self._tracer.start_span(name, context=self._parent_now(), start_time=_ns(self._clock.now()),
                                       attributes=attributes)
        facts: dict[str, AttributeValue] = {}
        self._command = span
        try:
            yield facts
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            self._command = None
            span.set_attributes(facts)
            span.end(end_time=_ns(self._clock.now()))
            if self._flush is not None:
                self._flush()

    @contextmanager
    def action(self, state: DeploymentState, action: Action) -> Iterator[None]:
        if isinstance(action, Hold):  # a hold is a wait: its span is the wait's
            yield
            return
        self._end_wait()
        span = self._tracer.start_span(
            kind_of(action), context=self._context(), start_time=_ns(self._clock.now()),
            attributes={**run_attributes(state), **action_attributes(action)})
        try:
            yield
        except Exception as exc:
            message = getattr(exc, "message", "") or str(exc)
            span.set_attributes({OUTCOME: "error", "pipeline.error": message})
            span.set_status(Status(StatusCode.ERROR, message))
            raise
        else:
            span.set_attribute(OUTCOME, "ok")
        finally:
            span.end(end_time=_ns(self._clock.now()))

    def waiting(self, state: DeploymentState, now: float) -> None:
        pending = state.pending
        if pending is None or (self._wait is not None and self._wait[0] == pending):
            return
        self._end_wait()
        attributes = {**run_attributes(state), WAIT: wait_kind(pending), ACTION: kind_of(pending)}
        if state.reason:
            attributes["pipeline.reason"] = state.reason
        if isinstance(pending, AwaitReady | Measure) and getattr(pending, "slot", None) is not None:
            attributes[SLOT] = pending.slot.value
        name = f"wait {wait_kind(pending)}"
        self._wait = (pending, self._tracer.start_span(name, context=self._context(), start_time=_ns(now),
                                                       attributes=attributes))

    def changed(self, before: DeploymentState, after: DeploymentState, notes: Sequence[str]) -> None:
        if self._wait is not None and self._wait[0] != after.pending:
            self._end_wait()
        span = self._run
        if span is None:
            return
        now = _ns(after.updated_at or self._clock.now())
        for note in notes:
            span.add_event(note, timestamp=now)
        if after.phase != before.phase:
            span.set_attribute(PHASE, after.phase.value)
        if after.phase.terminal:
            span.set_attribute(OUTCOME, after.phase.value)
            if after.phase in FAILED_PHASES:
                span.set_status(Status(StatusCode.ERROR, after.reason or after.phase.value))

    def current(self) -> Span:
        """The span of the command in progress (``command``), else an invalid span."""
        return self._command if self._command is not None else trace.INVALID_SPAN

    def _parent_now(self) -> Context | None:
        """A command span of this process when one is current (``pipeline.observe.command``),
        else ``TRACEPARENT``'s context (None: a new trace)."""
        if trace.get_current_span().get_span_context().is_valid:
            return None  # the SDK takes the current context
        return self._parent

    def _context(self) -> Context | None:
        return trace.set_span_in_context(self._run) if self._run is not None else self._parent

    def _end_wait(self) -> None:
        if self._wait is not None:
            self._wait[1].end(end_time=_ns(self._clock.now()))
            self._wait = None
