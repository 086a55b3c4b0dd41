"""The CLI end to end: real config files, the real composition root, fake platform ports.

``pipeline`` runs in-process (click's runner) with the local platform factory replaced by
one over the in-memory fakes, so every command's wiring, rendering and exit code is
exercised without processes or sleeping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline import app as app_module
from pipeline.cli.main import cli
from pipeline.core.model import Measurement, ServiceRef, Slot
from pipeline.testing import CollectingSink, FakeClock, FakePlatform, FakeRegistry, InMemoryStore
from tests.unit.support.fake_cli import FakeFactory
from tests.unit.support.operators import ME, project_with_members
from tests.unit.support.project import REPO_ROOT


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeFactory]]:
    FakeFactory.clock = FakeClock()
    FakeFactory.store = InMemoryStore(FakeFactory.clock)
    FakeFactory.fakes = FakePlatform.create()
    FakeFactory.registry_ = FakeRegistry()
    for version in ("v1", "v2", "v3"):
        FakeFactory.registry_.add("orders", version)
    monkeypatch.setitem(app_module.FACTORIES, "local", FakeFactory)
    monkeypatch.setattr(app_module, "SystemClock", lambda: FakeFactory.clock)
    monkeypatch.setenv("GITHUB_ACTOR", "alice")
    yield FakeFactory


def run(*args: str, actor: str = "alice") -> Any:
    runner = CliRunner()
    return runner.invoke(
        cli, ["--root", str(REPO_ROOT), *args], env={"GITHUB_ACTOR": actor}, catch_exceptions=False
    )


def code(*args: str, actor: str = "alice", root: Path = REPO_ROOT) -> tuple[int, str, str]:
    """Exit code as main() computes it, plus stdout and stderr."""
    from pipeline.cli import main as main_module

    runner = CliRunner()
    result: dict[str, int] = {}

    def invoke() -> None:
        result["code"] = main_module.main(["--root", str(root), *args])

    with runner.isolation(env={"GITHUB_ACTOR": actor, "PIPELINE_ACTOR": actor}) as (out, err, _mixed):
        invoke()
        return result["code"], out.getvalue().decode(), err.getvalue().decode()


def test_validate_reports_every_mistake_with_file_and_line_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(
        "project: shop\norganisations: {dev: {}}\nenvironments:\n"
        "  dev: {platform: local, owner: dev, local: {port: 8100}, colour: red}\n"
    )
    (tmp_path / "services" / "orders").mkdir(parents=True)
    (tmp_path / "services" / "ghost").mkdir(parents=True)
    (tmp_path / "services" / "orders" / "service.yaml").write_text(
        "name: orders\nkind: ecs\nowner: dev\n"
        "local: {command: python -m app}\n"
        "ecs: {container: orders, port: 8080, cpu: 256, memory: 512, route: {path: /o*, priority: 1}}\n"
        "deploy:\n  strategy: canary\n  steps:\n    - set_weight: 150\n    - pause: 5 minutes\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli.main", "--root", str(tmp_path), "validate"],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "pipeline.yaml:4: environments.dev.colour" in proc.stderr
    assert "services/orders/service.yaml:9: deploy.steps[0].set_weight" in proc.stderr
    assert "services/orders/service.yaml:10: deploy.steps[1].pause" in proc.stderr
    assert "5 minutes" in proc.stderr
    assert "services/ghost" in proc.stderr


def test_validate_accepts_the_example_project() -> None:
    result = run("validate", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["services"] == ["catalog", "notify", "orders"]


def test_schema_prints_both_json_schemas() -> None:
    result = run("schema")
    data = json.loads(result.stdout)
    assert set(data) == {"pipeline.yaml", "service.yaml"}


def test_dry_run_prints_the_plan_and_changes_nothing(fake: type[FakeFactory]) -> None:
    result = run("deploy", "orders", "--env", "dev", "--ref", "v1", "--dry-run")
    assert result.exit_code == 0
    assert "deploy v1" in result.stdout and "bring up blue" in result.stdout
    assert fake.store.states == {} and fake.fakes.log.calls == []


def test_deploy_status_history_and_a_failed_deployment_exit_code(fake: type[FakeFactory]) -> None:
    assert code("deploy", "orders", "--env", "dev", "--ref", "v1")[0] == 0
    assert code("deploy", "orders", "--env", "dev", "--ref", "v2")[0] == 0
    status = json.loads(run("status", "--json").stdout)
    assert [(s["service"], s["environment"], s["phase"], s["release"]["version"]) for s in status] == [
        ("orders", "dev", "succeeded", "v2")
    ]
    fake.fakes.metrics.per_slot[Slot.BLUE] = Measurement(500, 250, 20)
    exit_code, _out, err = code("deploy", "orders", "--env", "dev", "--ref", "v3")
    assert exit_code == 6
    assert "ended rolled_back" in err and "analysis failed" in err
    history = json.loads(run("history", "orders", "--env", "dev", "--json").stdout)
    assert {"deployment.succeeded", "deployment.rolled_back", "deploy"} <= {h["action"] for h in history}
    assert all(h["actor"] == "alice" for h in history if h["kind"] == "audit")


def test_continue_on_a_finished_deployment_is_a_state_conflict(fake: type[FakeFactory]) -> None:
    code("deploy", "orders", "--env", "dev", "--ref", "v1")
    exit_code, _out, err = code("continue", "orders", "--env", "dev")
    assert exit_code == 8
    assert "cannot apply ContinueRequested" in err


def test_unknown_service_is_not_found_with_the_known_names(fake: type[FakeFactory]) -> None:
    exit_code, _out, err = code("deploy", "nope", "--env", "dev")
    assert exit_code == 3
    assert "orders" in err


def test_promotion_to_prod_needs_passed_staging_an_ops_approval_and_confirmation(
    fake: type[FakeFactory], tmp_path: Path
) -> None:
    root = project_with_members(tmp_path)  # this OS account is an Ops member there
    for env in ("dev", "staging"):
        assert code("deploy", "orders", "--env", env, "--ref", "v1", root=root)[0] == 0
    exit_code, _out, err = code("promote", "orders", "--from", "staging", "--to", "prod", "--yes", root=root)
    assert exit_code == 5 and "no approval" in err
    exit_code, _out, err = code("approve", "orders", "--env", "prod", actor="carol")  # a label only
    assert exit_code == 5 and "not a member of ops" in err and f"{ME} (OS account, unverified)" in err
    assert code("approve", "orders", "--env", "prod", actor="mallory", root=root)[0] == 0
    exit_code, _out, err = code("promote", "orders", "--from", "staging", "--to", "prod", root=root)
    assert exit_code == 2 and "owned by ops" in err  # no tty, no --yes
    exit_code, out, err = code(
        "promote", "orders", "--from", "staging", "--to", "prod", "--yes", "--json", root=root
    )
    assert exit_code == 0, err
    staging = fake.store.load(ServiceRef("orders", "staging"))
    assert staging is not None
    assert json.loads(out)["release"]["digest"] == staging.release.digest


def test_rollback_returns_to_the_last_good_release(fake: type[FakeFactory]) -> None:
    code("deploy", "orders", "--env", "dev", "--ref", "v1")
    code("deploy", "orders", "--env", "dev", "--ref", "v2")
    exit_code, out, _err = code("rollback", "orders", "--env", "dev", "--yes", "--json")
    assert exit_code == 0
    assert json.loads(out)["release"]["version"] == "v1"


def test_the_lock_lease_comes_from_defaults_lock_ttl(fake: type[FakeFactory], tmp_path: Path) -> None:
    import shutil

    shutil.copytree(REPO_ROOT / "services", tmp_path / "services", ignore=shutil.ignore_patterns("tests"))
    text = (REPO_ROOT / "pipeline.yaml").read_text().replace("lock_ttl: 30s", "lock_ttl: 45s")
    (tmp_path / "pipeline.yaml").write_text(text)
    ctx = app_module.App(root_hint=tmp_path).context("dev", CollectingSink())
    assert ctx.settings.lease_ttl == 45.0
