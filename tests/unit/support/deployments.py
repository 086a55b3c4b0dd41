"""Real deployment records for output tests: the engine over the in-memory platform fakes,
persisted in a real SQLite store, so ``status`` and ``history`` read what a run writes."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.model import Measurement, ServiceRef, Slot
from pipeline.engine import NullSink
from pipeline.local.state.sqlite_store import open_sqlite
from pipeline.operations import Context, deploy
from pipeline.testing import FakeClock, FakePlatform, release
from tests.unit.support.engine import CANARY

ORDERS = ServiceRef("orders", "dev")
CATALOG = ServiceRef("catalog", "dev")


def seed(db: Path) -> None:
    """orders in dev: v1 then v2, both succeeded. catalog in dev: v1 succeeded, then v2
    rolled back because only one request reached it (the long reason of a quiet
    environment)."""
    clock = FakeClock()
    store, locks = open_sqlite(db, clock)
    platform = FakePlatform.create()
    ctx = Context(
        store=store,
        locks=locks,
        clock=clock,
        sink=NullSink(),
        platform_for=lambda ref: platform.ports(),
        actor="alice",
        owner="alice@host:1",
    )
    for version in ("v1", "v2"):
        assert deploy(ctx, ORDERS, release(version), CANARY).phase.value == "succeeded"
    assert deploy(ctx, CATALOG, release("v1", "catalog"), CANARY).phase.value == "succeeded"
    platform.metrics.per_slot[Slot.GREEN] = Measurement(requests=1, errors=0, p95_ms=40.0)
    assert deploy(ctx, CATALOG, release("v2", "catalog"), CANARY).phase.value == "rolled_back"
