"""One run, several observers: the trace and the notifications see the same run."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Protocol, runtime_checkable

from pipeline.core.ports import RunObserver
from pipeline.core.state import Action, DeploymentState

log = logging.getLogger("pipeline.observe")


@runtime_checkable
class TraceJoiner(Protocol):
    """An observer that wants the run's trace id (notifications name it)."""

    def joined(self, trace_id: str) -> None: ...


class Observers:
    """A ``RunObserver`` that passes every call on to each of ``observers``, in order.

    The first non-empty trace id is the run's. ``waiting`` and ``changed`` of one observer
    that raises are logged and do not keep the others (or the deployment) from going on."""

    def __init__(self, observers: Sequence[RunObserver]) -> None:
        self._observers = tuple(observers)

    @contextmanager
    def run(self, state: DeploymentState, purpose: str) -> Iterator[str]:
        with ExitStack() as stack:
            ids = [stack.enter_context(o.run(state, purpose)) for o in self._observers]
            trace_id = next((i for i in ids if i), "")
            for observer in self._observers:
                if isinstance(observer, TraceJoiner):
                    observer.joined(trace_id)
            yield trace_id

    @contextmanager
    def action(self, state: DeploymentState, action: Action) -> Iterator[None]:
        with ExitStack() as stack:
            for observer in self._observers:
                stack.enter_context(observer.action(state, action))
            yield

    def waiting(self, state: DeploymentState, now: float) -> None:
        for observer in self._observers:
            try:
                observer.waiting(state, now)
            except Exception:  # an observer never fails a run
                log.warning("observer %s failed on a wait", type(observer).__name__, exc_info=True)

    def changed(self, before: DeploymentState, after: DeploymentState, notes: Sequence[str]) -> None:
        for observer in self._observers:
            try:
                observer.changed(before, after, notes)
            except Exception:  # an observer never fails a run
                log.warning("observer %s failed on a change", type(observer).__name__, exc_info=True)
