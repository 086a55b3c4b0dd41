"""The ``pipeline`` CLI in-process over the real composition root and config, with the
local platform factory replaced by one over the in-memory fakes (one store for every
environment). ``install`` wires it; ``code`` runs a command as ``main()`` does and returns
its exit code, stdout and stderr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline import app as app_module
from pipeline.core.ports import ImageRegistry, LockManager, Platform, StateStore
from pipeline.testing import FakeClock, FakePlatform, FakeRegistry, InMemoryStore
from tests.unit.support.project import REPO_ROOT

VERSIONS = ("v1", "v2", "v3", "v4")


class FakeFactory:
    """A PlatformFactory over shared fakes (class-level, so separate invocations share state)."""

    clock = FakeClock()
    store = InMemoryStore(clock)
    fakes = FakePlatform.create()
    registry_ = FakeRegistry()

    def __init__(self, project: Any, clock: Any) -> None:
        self.project = project

    def stores(self, env: Any) -> tuple[StateStore, LockManager]:
        return self.store, self.store

    def platform(self, env: Any, service: Any) -> Platform:
        return FakeFactory.fakes.ports()

    def registry(self, env: Any) -> ImageRegistry:
        return self.registry_


def install(monkeypatch: pytest.MonkeyPatch) -> type[FakeFactory]:
    """Fresh fakes, with releases v1..v4 of orders in the registry."""
    FakeFactory.clock = FakeClock()
    FakeFactory.store = InMemoryStore(FakeFactory.clock)
    FakeFactory.fakes = FakePlatform.create()
    FakeFactory.registry_ = FakeRegistry()
    for version in VERSIONS:
        FakeFactory.registry_.add("orders", version)
    monkeypatch.setitem(app_module.FACTORIES, "local", FakeFactory)
    monkeypatch.setattr(app_module, "SystemClock", lambda: FakeFactory.clock)
    return FakeFactory


def code(*args: str, root: Path = REPO_ROOT, **env: str) -> tuple[int, str, str]:
    """Exit code as main() computes it, plus stdout and stderr. ``env`` sets variables
    (e.g. ``PIPELINE_ACTOR="carol"``); stdin is not a terminal."""
    from pipeline.cli import main as main_module

    runner = CliRunner()
    with runner.isolation(env={"GITHUB_ACTOR": "", "PIPELINE_ACTOR": "", **env}) as (out, err, _mixed):
        exit_code = main_module.main(["--root", str(root), *args])
        return exit_code, out.getvalue().decode(), err.getvalue().decode()
