"""``pipeline --project FILE``: environments from another repository's pipeline.yaml,
services from the root's services/ folder; problems name the right file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import load_project
from pipeline.core.errors import ConfigError
from tests.unit.support.gitrepo import run, shop

OPS = """\
project: shop
organisations:
  dev: {members: []}
  ops: {members: [carol]}
environments:
  prod:
    platform: local
    owner: ops
    requires: {approval: ops, passed: [staging]}
    local: {port: 18300}
  staging: {platform: local, owner: dev, local: {port: 18200}}
"""


def _ops_file(tmp_path: Path, text: str = OPS) -> Path:
    path = tmp_path / "ops-repo" / "pipeline.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_environments_come_from_the_file_and_services_from_the_root(tmp_path: Path) -> None:
    shop(tmp_path / "dev-repo")
    project = load_project(tmp_path / "dev-repo", _ops_file(tmp_path))
    assert sorted(project.config.environments) == ["prod", "staging"]
    assert sorted(project.services) == ["catalog", "orders"]
    assert project.project_file == str((tmp_path / "ops-repo" / "pipeline.yaml").resolve())


def test_a_problem_in_the_project_file_names_that_file_and_line(tmp_path: Path) -> None:
    shop(tmp_path / "dev-repo")
    bad = OPS.replace("local: {port: 18300}", "local: {port: 80}")
    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path / "dev-repo", _ops_file(tmp_path, bad))
    shown = str((tmp_path / "ops-repo" / "pipeline.yaml").resolve())
    assert any(p.startswith(f"{shown}:10: environments.prod.local.port") for p in caught.value.problems)


def test_a_service_owned_by_an_organisation_the_file_lacks_is_reported_in_the_service_file(
    tmp_path: Path,
) -> None:
    shop(tmp_path / "dev-repo")
    only_ops = OPS.replace("  dev: {members: []}\n", "").replace("owner: dev", "owner: ops")
    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path / "dev-repo", _ops_file(tmp_path, only_ops))
    assert any(p.startswith("services/orders/service.yaml:3: owner") for p in caught.value.problems)


def test_validate_reports_the_files_it_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shop(tmp_path / "dev-repo")
    ops = _ops_file(tmp_path)
    assert run(tmp_path / "dev-repo", "--project", str(ops), "validate", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["project_file"] == str(ops.resolve())
    assert summary["services_dir"] == str((tmp_path / "dev-repo" / "services").resolve())
    assert summary["environments"] == ["prod", "staging"]


def test_the_pipeline_project_variable_does_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shop(tmp_path / "dev-repo")
    monkeypatch.setenv("PIPELINE_PROJECT", str(_ops_file(tmp_path)))
    assert run(tmp_path / "dev-repo", "status", "--env", "dev") == 3
    assert "unknown environment 'dev': it is not defined in " + str(tmp_path) in capsys.readouterr().err
