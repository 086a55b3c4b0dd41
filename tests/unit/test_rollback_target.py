"""`pipeline rollback` goes to the release that served before the one serving now: after a
deployment that rolled itself back, one release further back; twice, two back (never
forward). Before acting it states what serves, the target and why, and asks or needs
`--yes`."""

from __future__ import annotations

import pytest

from pipeline.core.errors import NotFoundError
from pipeline.core.model import Measurement, Release, ServiceRef, Slot
from pipeline.core.ports import Record
from pipeline.core.state import Phase
from pipeline.operations import deploy, rollback, rollback_plan
from pipeline.requirements import SUCCEEDED
from pipeline.rollback import lineage
from pipeline.testing import release
from tests.unit.support.engine import CANARY, REF, World
from tests.unit.support.fake_cli import FakeFactory, code, install

DEV = ServiceRef("orders", "dev")


def succeeded(world: World, *versions: str) -> list[Release]:
    releases = [release(v) for v in versions]
    for r in releases:
        assert deploy(world.ctx(), REF, r, CANARY).phase is Phase.SUCCEEDED
    return releases


def fails_analysis(world: World, version: str) -> Release:
    """Deploy ``version`` with a failing new slot: the deployment rolls itself back."""
    world.platform.metrics.per_slot[Slot.GREEN] = Measurement(100, 50, 10)
    world.platform.metrics.per_slot[Slot.BLUE] = Measurement(100, 50, 10)
    bad = release(version)
    assert deploy(world.ctx(), REF, bad, CANARY).phase is Phase.ROLLED_BACK
    world.platform.metrics.per_slot.clear()
    return bad


def test_after_a_deployment_rolled_itself_back_rollback_goes_one_release_further_back() -> None:
    world = World()
    v1, v2 = succeeded(world, "v1", "v2")
    fails_analysis(world, "v3")
    planned = rollback_plan(world.ctx(), REF)
    assert (planned.serving, planned.target) == (v2, v1)
    assert "the last deployment (v3" in planned.reason and "ended rolled_back" in planned.reason
    assert "one release further back is v1" in planned.reason
    state = rollback(world.ctx(), REF, CANARY)
    assert state is not None and state.release == v1


def test_rolling_back_twice_goes_two_releases_back_never_forward() -> None:
    world = World()
    v1, v2, _v3 = succeeded(world, "v1", "v2", "v3")
    first = rollback(world.ctx(), REF, CANARY)
    assert first is not None and first.release == v2
    second = rollback(world.ctx(), REF, CANARY)  # before: back to v3, the release just left
    assert second is not None and second.release == v1


def test_after_rolling_back_and_a_failed_deployment_nothing_older_is_left() -> None:
    world = World()
    succeeded(world, "v1", "v2")
    assert rollback(world.ctx(), REF, CANARY) is not None  # v1 serves
    fails_analysis(world, "v3")  # rolled itself back: v1 still serves
    live = world.store.load(REF)
    assert live is not None and live.stable is not None and live.stable.version == "v1"
    with pytest.raises(NotFoundError, match="nothing served before v1"):
        rollback_plan(world.ctx(), REF)  # before: v2, the release the first rollback left


def test_a_release_deployed_again_later_counts_where_it_served_last() -> None:
    world = World()
    _v1, v2, _v3 = succeeded(world, "v1", "v2", "v3")
    succeeded(world, "v1")  # v1 again, on purpose: it serves now, v3 before it
    assert rollback_plan(world.ctx(), REF).target.version == "v3"
    assert v2.version == "v2"


def test_to_names_a_release_that_succeeded_there() -> None:
    world = World()
    v1, _v2, _v3 = succeeded(world, "v1", "v2", "v3")
    planned = rollback_plan(world.ctx(), REF, to="v1")
    assert planned.target == v1 and planned.reason.startswith("--to v1")
    with pytest.raises(NotFoundError, match="none matching 'v3' succeeded there \\(other than v3"):
        rollback_plan(world.ctx(), REF, to="v3")


# --- the CLI: states, then asks ------------------------------------------------------


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeFactory]:
    return install(monkeypatch)


def test_rollback_states_serving_target_and_why_and_refuses_without_yes_off_a_terminal(
    fake: type[FakeFactory],
) -> None:
    for version in ("v1", "v2"):
        assert code("deploy", "orders", "--env", "dev", "--ref", version)[0] == 0
    before = fake.store.load(DEV)
    exit_code, _out, err = code("rollback", "orders", "--env", "dev", COLUMNS="200")
    assert exit_code == 2
    assert "serving:          v2 (" in err and "rolling back to:  v1 (" in err
    assert "why:              v2 (" in err and "served before it" in err
    assert "refusing to roll back dev without confirmation" in err and "--yes" in err
    assert fake.store.load(DEV) == before  # nothing changed
    exit_code, _out, err = code("rollback", "orders", "--env", "dev", "--yes")
    assert exit_code == 0, err
    live = fake.store.load(DEV)
    assert live is not None and live.release.version == "v1"


def test_a_rollback_signal_to_a_running_deployment_is_not_a_rollback_deployment() -> None:
    v1, v2 = release("v1"), release("v2")

    def done(deployment: str, r: Release) -> Record:
        return Record(1.0, REF, deployment, "", SUCCEEDED, data={"release": r.to_dict()})

    records = [
        done("d-1", v1),
        done("d-2", v2),
        Record(2.0, REF, "d-3", "bob", "rollback", phase="baking", kind="audit"),  # came too late
        done("d-3", v1),  # d-3 deployed v1 again and succeeded: it serves on top of v2
    ]
    assert [r.version for r in lineage(records)] == ["v1", "v2", "v1"]
    records.append(Record(3.0, REF, "d-4", "carol", "rollback", phase="pending", kind="audit"))
    records.append(done("d-4", v2))  # a rollback deployment that restored v2
    assert [r.version for r in lineage(records)] == ["v1", "v2"]
