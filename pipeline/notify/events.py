"""Which changes of a run are notified, and delivery that never fails a deployment.

The events, from the states the engine saves (``RunObserver.changed``):

- ``started``: the deployment left ``pending`` (its first action is about to run);
- ``paused``: it now waits for a ``continue`` (an approval step, ``on_inconclusive: pause``);
- ``succeeded``: it ended successfully; ``promoted`` instead when the run was a promotion;
- ``rolled_back``: it ended rolled back, or a ``pipeline rollback`` redeploy ended successfully;
- ``failed``: it ended aborted or failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from pipeline.core.errors import PipelineError
from pipeline.core.ports import Clock, EventSink, Record, StateStore
from pipeline.core.state import Action, DeploymentState, Hold, Phase
from pipeline.notify.notice import Channel, Notice, NotifyFailed

log = logging.getLogger("pipeline.notify")
NOTIFY_ACTOR = "pipeline"


def event_of(before: DeploymentState, after: DeploymentState, purpose: str) -> str | None:
    """The event the change ``before`` -> ``after`` is, if any (see the module docstring)."""
    if before.phase is Phase.PENDING and after.phase is not Phase.PENDING and not after.phase.terminal:
        return "started"
    if after.phase.terminal and not before.phase.terminal:
        if after.phase is Phase.SUCCEEDED:
            if purpose.startswith("promote"):
                return "promoted"
            return "rolled_back" if purpose.startswith("rollback") else "succeeded"
        return "rolled_back" if after.phase is Phase.ROLLED_BACK else "failed"
    waits = isinstance(after.pending, Hold) and after.pending.until is None
    if waits and after.pending != before.pending and not after.phase.terminal:
        return "paused"
    return None


class Notifier:
    """A ``RunObserver`` that sends the run's events to ``channels``.

    ``events`` filters what is sent; ``link`` gives the report link of a deployment. A
    channel that fails is logged, shown on ``sink`` and recorded in ``store``'s history
    (``notify.failed``); the deployment goes on."""

    def __init__(self, channels: Sequence[Channel], events: frozenset[str], *, clock: Clock,
                 store: StateStore | None = None, sink: EventSink | None = None,
                 link: Callable[[DeploymentState], str] = lambda _: "") -> None:
        self._channels = tuple(channels)
        self._events = events
        self._clock = clock
        self._store = store
        self._sink = sink
        self._link = link
        self._purpose = ""
        self._trace_id = ""

    @contextmanager
    def run(self, state: DeploymentState, purpose: str) -> Iterator[str]:
        self._purpose = purpose
        yield ""

    def joined(self, trace_id: str) -> None:
        """The run's trace id, named in the notices (set by the fan-out once it is known)."""
        self._trace_id = trace_id

    @contextmanager
    def action(self, state: DeploymentState, action: Action) -> Iterator[None]:
        yield

    def waiting(self, state: DeploymentState, now: float) -> None:
        return None

    def changed(self, before: DeploymentState, after: DeploymentState, notes: Sequence[str]) -> None:
        event = event_of(before, after, self._purpose)
        if event is not None and event in self._events:
            self.notify(event, after)

    def notify(self, event: str, state: DeploymentState) -> list[str]:
        """Send one event to every channel; returns the failures (also logged and recorded)."""
        try:
            link = self._link(state)
        except (KeyError, ValueError) as exc:
            link = ""
            log.warning("report link not built: %s", exc)
        notice = Notice.of(event, state, purpose=self._purpose, link=link, trace_id=self._trace_id)
        failures: list[str] = []
        for channel in self._channels:
            try:
                channel.send(notice)
            except (NotifyFailed, PipelineError) as exc:
                why = exc.message if isinstance(exc, PipelineError) else str(exc)
                failures.append(f"{event} notification via {channel.name} failed: {why}")
            except Exception as exc:  # a notification never fails a deployment
                why = f"{type(exc).__name__}: {exc}"
                failures.append(f"{event} notification via {channel.name} failed: {why}")
        if failures:
            self._report(state, failures)
        return failures

    def _report(self, state: DeploymentState, failures: list[str]) -> None:
        for failure in failures:
            log.warning("%s (the deployment goes on)", failure)
        if self._sink is not None:
            self._sink.emit(state, failures)
        if self._store is None:
            return
        records = [Record(ts=self._clock.now(), ref=state.ref, deployment=state.id, actor=NOTIFY_ACTOR,
                          action="notify.failed", phase=state.phase.value, version=state.release.version,
                          digest=state.release.digest, detail=failure) for failure in failures]
        try:
            self._store.commit(None, records)
        except PipelineError as exc:
            log.warning("could not record the notification failure: %s", exc.message)
