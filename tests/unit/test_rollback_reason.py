"""``pipeline rollback --reason``: the operator's words are recorded in the history."""

from __future__ import annotations

from pipeline.core.state import Phase
from pipeline.operations import deploy, rollback
from pipeline.testing import release
from tests.unit.support.engine import CANARY, REF, stable_world


def test_a_rollback_after_a_finished_deployment_records_the_reason() -> None:
    world, v1 = stable_world()
    assert deploy(world.ctx(), REF, release("v2"), CANARY).phase is Phase.SUCCEEDED
    state = rollback(world.ctx(actor="carol"), REF, CANARY, reason="checkout errors since 14:02")
    assert state is not None and state.phase is Phase.SUCCEEDED and state.release == v1
    audit = [r for r in world.store.history(REF) if r.kind == "audit" and r.action == "rollback"]
    expected = ("carol", f"rollback {v1.short}: checkout errors since 14:02")
    assert [(r.actor, r.detail) for r in audit] == [expected]


def test_without_a_reason_the_record_names_only_the_release() -> None:
    world, v1 = stable_world()
    deploy(world.ctx(), REF, release("v2"), CANARY)
    rollback(world.ctx(), REF, CANARY)
    audit = [r.detail for r in world.store.history(REF) if r.kind == "audit" and r.action == "rollback"]
    assert audit == [f"rollback {v1.short}"]
