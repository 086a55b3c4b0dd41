"""``pipeline test SERVICE`` runs the service's real test command in a temporary project."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.support.gitrepo import PIPELINE_YAML, run, service_yaml


def _project(tmp_path: Path, test: str | None) -> Path:
    root = tmp_path / "shop"
    (root / "services" / "orders").mkdir(parents=True)
    (root / "pipeline.yaml").write_text(PIPELINE_YAML)
    text = service_yaml("orders", test or "unused")
    if test is None:
        text = "\n".join(line for line in text.splitlines() if not line.startswith("test:")) + "\n"
    (root / "services" / "orders" / "service.yaml").write_text(text)
    return root


def test_passing_tests_exit_0_and_run_from_the_project_root(tmp_path: Path) -> None:
    root = _project(tmp_path, "python -c \"import pathlib; pathlib.Path('ran-here').write_text('x')\"")
    assert run(root, "test", "orders") == 0
    assert (root / "ran-here").read_text() == "x"


def test_failing_tests_exit_6_naming_the_command_and_its_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path, "python -c 'raise SystemExit(3)'")
    assert run(root, "test", "orders") == 6
    message = " ".join(capsys.readouterr().err.split())
    assert "unit tests of orders failed" in message
    assert "exited with status 3" in message and "python -c" in message


def test_the_command_runs_without_a_shell(tmp_path: Path) -> None:
    check = "import sys; sys.exit(0 if sys.argv[1:] == [chr(36) + 'HOME', '>', 'out'] else 1)"
    root = _project(tmp_path, f'python -c "{check}" $HOME > out')
    assert run(root, "test", "orders") == 0  # a shell would have expanded $HOME and redirected
    assert not (root / "out").exists()


def test_test_env_is_added_to_the_environment(tmp_path: Path) -> None:
    root = _project(tmp_path, "python -c 'import os, sys; sys.exit(os.environ[\"MODE\"] != \"unit\")'")
    path = root / "services" / "orders" / "service.yaml"
    path.write_text(path.read_text().replace("test: {command:", "test: {env: {MODE: unit}, command:"))
    assert run(root, "test", "orders") == 0


def test_a_missing_program_is_a_config_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path, "no-such-test-runner --all")
    assert run(root, "test", "orders") == 2
    message = capsys.readouterr().err
    assert "'no-such-test-runner' was not found" in message
    assert "services/orders/service.yaml: test.command" in message


def test_a_service_without_tests_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path, None)
    assert run(root, "test", "orders") == 2
    assert "orders has no unit tests to run" in capsys.readouterr().err


def test_an_unknown_service_exits_3(tmp_path: Path) -> None:
    root = _project(tmp_path, "python -c pass")
    assert run(root, "test", "payments") == 3
