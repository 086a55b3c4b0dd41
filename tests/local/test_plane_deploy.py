"""The whole engine on the local platform: ``pipeline.operations.deploy`` with a Context wired
to ``LocalFactory`` (SQLite store, plane adapters, real clock) and real traffic.

The canary (20% -> pause 1 s -> analyse -> 50% -> pause 1 s -> analyse) runs under steady
load without a single failed request; a bad release committed in a throwaway git worktree
is caught by the analysis and rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.clock import SystemClock
from pipeline.config import load_project
from pipeline.core.model import Release, ServiceRef
from pipeline.core.ports import Platform
from pipeline.core.state import Phase
from pipeline.local.factory import LocalFactory
from pipeline.local.plane.lifecycle import plane_processes, read_plane, stop_plane
from pipeline.operations import Context, deploy
from pipeline.owners import owner_id
from pipeline.testing import CollectingSink
from tests.local.support.plane import Load, Project, get, git, version_of

REF = ServiceRef("orders", "dev")


@pytest.fixture
def factory(project: Project) -> Iterator[LocalFactory]:
    yield LocalFactory(load_project(project.root), SystemClock())
    info = read_plane(project.state_dir)
    stop_plane(project.state_dir)
    if info is not None:
        assert plane_processes(info.id) == []


def _context(factory: LocalFactory) -> tuple[Context, CollectingSink, Platform]:
    env = factory.project.environment("dev")
    platform = factory.platform(env, factory.project.service("orders"))  # starts the plane
    store, locks = factory.stores(env)
    sink = CollectingSink()
    ctx = Context(store=store, locks=locks, clock=factory.clock, sink=sink,
                  platform_for=lambda ref: platform, actor="tester", owner=owner_id("tester"))
    return ctx, sink, platform


def _release(factory: LocalFactory, ref: str) -> Release:
    return factory.registry(factory.project.environment("dev")).resolve("orders", ref)


def test_canary_under_load_succeeds_without_a_failed_request(project: Project, factory: LocalFactory) -> None:
    assert read_plane(project.state_dir) is None
    ctx, sink, platform = _context(factory)
    assert read_plane(project.state_dir) is not None  # platform() started the plane
    strategy = factory.project.strategy("orders")

    v1 = _release(factory, "HEAD")
    first = deploy(ctx, REF, v1, strategy)
    assert first.phase is Phase.SUCCEEDED, sink.notes
    main = f"http://127.0.0.1:{project.port}/orders"
    assert version_of(get(main)[2]) == v1.version

    v2 = _release(factory, project.commit_change("services/orders/NOTES", "v2\n", "orders v2"))
    load = Load(main, workers=6).start()
    try:
        second = deploy(ctx, REF, v2, strategy)
    finally:
        load.stop()
    assert second.phase is Phase.SUCCEEDED, sink.notes
    assert load.failures == [], load.failures[:5]
    assert load.slots[first.new_slot.value] > 0 and load.slots[second.new_slot.value] > 0
    notes = "\n".join(sink.notes)
    assert "traffic verified: blue 80% / green 20%" in notes
    assert "traffic verified: blue 50% / green 50%" in notes
    assert notes.count("analysis successful") == 2
    assert {version_of(get(main)[2]) for _ in range(10)} == {v2.version}
    assert platform.compute.health(first.new_slot, v1).running == 0  # the old slot was scaled down
    history = ctx.store.history(REF)
    assert [r.action for r in history].count("deployment.succeeded") == 2


def test_a_bad_release_from_another_worktree_is_rolled_back(project: Project, factory: LocalFactory) -> None:
    ctx, sink, _ = _context(factory)
    strategy = factory.project.strategy("orders")
    v1 = _release(factory, "HEAD")
    assert deploy(ctx, REF, v1, strategy).phase is Phase.SUCCEEDED

    worktree = project.root.parent / "bad-worktree"
    git(project.root, "worktree", "add", "-q", "-b", "bad", str(worktree))
    (worktree / "services" / "orders" / "fault.json").write_text('{"error_rate": 0.6}\n')
    git(worktree, "add", "-A")
    git(worktree, "commit", "-q", "-m", "a bad release")
    bad = _release(factory, git(worktree, "rev-parse", "HEAD"))
    assert bad.commit != v1.commit and bad.digest != v1.digest
    assert _release(factory, bad.commit) == bad  # the same commit gives the same digest

    main = f"http://127.0.0.1:{project.port}/orders"
    load = Load(main, workers=4).start()
    try:
        outcome = deploy(ctx, REF, bad, strategy)
    finally:
        load.stop()
    assert outcome.phase is Phase.ROLLED_BACK, sink.notes
    assert "analysis failed" in outcome.reason
    assert {version_of(get(main)[2]) for _ in range(10)} == {v1.version}
