"""``LocalTraces``: the ``Traces`` port over the plane's span store, for one service in one
environment.

A trace belongs to the service when the environment's router routed some request of it to
the service (a router span with ``pipeline.service`` and ``pipeline.environment``), and to
a slot when that router span names the slot. Traces are read newest first, at most
``limit`` of them, and kept when they started within ``[since, until]``. The plane is first
asked to store the spans it holds back while its router is busy (``store_held_spans``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from pipeline.core.errors import PlatformError
from pipeline.core.hops import ROUTER, SERVICE_KEY, SLOT_KEY, Trace
from pipeline.core.model import Slot
from pipeline.local.plane.control_client import store_held_spans
from pipeline.local.spans import ENVIRONMENT_KEY, SpanRecord, SpanStore

LIMIT = 2000


class LocalTraces:
    """Traces of ``service`` in ``environment`` from the span store of the plane in ``state_dir``."""

    def __init__(self, state_dir: Path, environment: str, service: str, *, limit: int = LIMIT) -> None:
        self.state_dir = Path(state_dir)
        self.environment = environment
        self.service = service
        self.limit = limit

    def traces(self, since: float, until: float, slot: Slot | None = None) -> Sequence[Trace]:
        store_held_spans(self.state_dir)  # the router's spans held back while it is busy: stored now
        try:
            store = SpanStore.of(self.state_dir)
            found = store.find(service=ROUTER, environment=self.environment, since=since, limit=self.limit)
            traces = [store.trace(t.trace_id) for t in found if t.start <= until]
        except (sqlite3.Error, OSError) as exc:
            raise PlatformError(
                f"cannot read traces from {self.state_dir / 'spans.db'}: {exc}",
                hint="check that the plane's folder is readable; `pipeline local status` shows the plane",
            ) from exc
        return [t for t in traces if self._routed(t, slot)]

    def _routed(self, trace: list[SpanRecord], slot: Slot | None) -> bool:
        for span in trace:
            a = span.attributes
            if span.service != ROUTER or a.get(SERVICE_KEY) != self.service:
                continue
            if a.get(ENVIRONMENT_KEY) == self.environment and (slot is None or a.get(SLOT_KEY) == slot.value):
                return True
        return False
