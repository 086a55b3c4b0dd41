"""An ``access: read`` AWS environment (region and state table only) reads its history
from DynamoDB (moto behind it) and refuses every command that would change it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pipeline.aws.factory import AwsFactory
from pipeline.aws.state.table import ensure_table
from pipeline.cli.main import main
from pipeline.config import load_project
from pipeline.core.model import ServiceRef
from pipeline.core.ports import Record
from pipeline.testing import FakeClock

DIGEST = "sha256:" + "ab" * 32


def _ops_project(root: Path) -> Path:
    """An Ops-style project: Dev's staging on AWS, read-only, with no deploy keys at all."""
    (root / "services" / "orders").mkdir(parents=True)
    (root / "pipeline.yaml").write_text(textwrap.dedent("""\
        project: shop
        organisations: {dev: {}, ops: {}}
        environments:
          staging:
            platform: aws
            owner: dev
            access: read
            aws: {region: eu-west-1, state_table: pipeline-state}
          prod: {platform: local, owner: ops, requires: {passed: [staging]}, local: {port: 18300}}
        """))
    (root / "services" / "orders" / "service.yaml").write_text(textwrap.dedent("""\
        name: orders
        kind: ecs
        owner: dev
        paths: [services/orders/**]
        build: {context: services/orders}
        local: {command: python -m app}
        ecs: {container: orders, port: 8080, route: {path: /orders*, priority: 10}}
        """))
    return root


def test_history_of_a_read_only_aws_environment_comes_from_its_table(
    aws: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _ops_project(tmp_path / "ops")
    factory = AwsFactory(load_project(root), FakeClock(), actor="dev-pipeline", max_attempts=2)
    staging = factory.project.environment("staging")
    ensure_table(factory.session(staging), "pipeline-state", FakeClock())
    store, _locks = factory.stores(staging)  # what the Dev pipeline wrote when staging passed
    ref = ServiceRef("orders", "staging")
    store.commit(None, [Record(1.0, ref, "d-1", "dev-pipeline", "deployment.succeeded", digest=DIGEST)])

    assert main(["--root", str(root), "history", "orders", "--env", "staging", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["action"], r["digest"]) for r in records] == [("deployment.succeeded", DIGEST)]

    assert main(["--root", str(root), "rollback", "orders", "--env", "staging", "--yes"]) == 2
    assert "cannot roll back staging" in capsys.readouterr().err
