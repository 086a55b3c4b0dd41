"""``$PIPELINE_LOCAL_HOME``: one folder for the local platform's state, registry and plane."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_project
from pipeline.core.errors import UsageError
from pipeline.local.factory import LocalFactory
from pipeline.local.plane.lifecycle import state_dir_of
from pipeline.testing import FakeClock
from tests.unit.support.gitrepo import run, shop


def test_without_it_state_lives_under_the_projects_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPELINE_LOCAL_HOME", raising=False)
    assert state_dir_of(tmp_path) == tmp_path.resolve() / ".pipeline"
    assert state_dir_of(tmp_path, "var/state") == tmp_path.resolve() / "var" / "state"


def test_two_projects_naming_the_same_home_share_store_registry_and_plane(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("PIPELINE_LOCAL_HOME", str(home))
    factories = []
    for name in ("dev-checkout", "ops-checkout"):
        shop(tmp_path / name)
        project = load_project(tmp_path / name)
        factories.append((project, LocalFactory(project, FakeClock())))
    for project, factory in factories:
        env = project.environment("dev")
        assert factory.state_dir == home.resolve()
        assert factory.registry(env).state_dir == home.resolve()
        store, _locks = factory.stores(env)
        store.commit(None, [])
    assert (home / "state.db").is_file()
    assert not (tmp_path / "dev-checkout" / ".pipeline").exists()


def test_a_relative_home_is_refused_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_LOCAL_HOME", "relative/home")
    with pytest.raises(UsageError, match="must be an absolute folder"):
        state_dir_of(tmp_path)
    shop(tmp_path / "shop")
    assert run(tmp_path / "shop", "status") == 2
    assert "PIPELINE_LOCAL_HOME must be an absolute folder" in capsys.readouterr().err
