"""``access: read`` environments: history and status only; AWS keys for deploying optional."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_project
from pipeline.core.errors import ConfigError
from tests.unit.support.gitrepo import run, shop
from tests.unit.support.project import WriteProject

AWS_READ = """\
project: shop
organisations: {dev: {}, ops: {}}
environments:
  prod: {platform: local, owner: ops, local: {port: 18300}}
  aws-staging:
    platform: aws
    owner: dev
    access: read
    aws:
      region: eu-west-1
      state_table: pipeline-state
      role_arn: arn:aws:iam::123456789012:role/pipeline-read
"""

SERVICE = """\
name: orders
kind: ecs
owner: dev
paths: [services/orders/**]
build: {context: services/orders}
local: {command: python -m app}
ecs: {container: orders, port: 8080, route: {path: /orders*, priority: 10}}
"""


def test_a_read_only_aws_environment_needs_only_region_and_state_table(write_project: WriteProject) -> None:
    project = load_project(write_project(AWS_READ, {"orders": SERVICE}))
    env = project.environment("aws-staging")
    assert env.access == "read" and env.aws is not None and env.aws.cluster is None
    assert project.environment("prod").access == "write"


def test_an_aws_environment_that_deploys_reports_each_missing_key_at_its_aws_line(
    write_project: WriteProject,
) -> None:
    root = write_project(AWS_READ.replace("    access: read\n", ""), {"orders": SERVICE})
    with pytest.raises(ConfigError) as caught:
        load_project(root)
    problems = caught.value.problems
    assert "pipeline.yaml:8: environments.aws-staging.aws.cluster: required key is missing: add it " in (
        "\n".join(problems)
    )
    missing = {p.split(": ")[1].rsplit(".", 1)[1] for p in problems}
    assert missing == {
        "account", "cluster", "listener_arn", "test_listener_arn", "vpc_id", "subnets", "security_groups",
        "ecr_registry",
    }
    assert all("only an `access: read` environment may omit it" in p for p in problems)


def test_access_takes_read_or_write_only(write_project: WriteProject) -> None:
    root = write_project(AWS_READ.replace("access: read", "access: readonly"), {"orders": SERVICE})
    with pytest.raises(ConfigError) as caught:
        load_project(root)
    where = "pipeline.yaml:8: environments.aws-staging.access:"
    assert any(p.startswith(where) for p in caught.value.problems)


READ_STAGING = """\
project: shop
organisations:
  dev: {members: []}
environments:
  dev: {platform: local, owner: dev, local: {port: 18100}}
  staging: {platform: local, owner: dev, access: read, local: {port: 18200}}
"""


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["deploy", "orders", "--env", "staging", "--yes"], "deploy to staging"),
        (["promote", "orders", "--from", "dev", "--to", "staging", "--yes"], "promote into staging"),
        (["rollback", "orders", "--env", "staging", "--yes"], "roll back staging"),
        (["abort", "orders", "--env", "staging", "--yes"], "abort a deployment in staging"),
        (["continue", "orders", "--env", "staging", "--yes"], "continue a deployment in staging"),
        (["approve", "orders", "--env", "staging"], "approve a release for staging"),
        (["push", "orders", "--env", "staging"], "push to staging"),
    ],
)
def test_every_command_that_changes_a_read_only_environment_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], what: str
) -> None:
    shop(tmp_path / "shop")
    (tmp_path / "shop" / "pipeline.yaml").write_text(READ_STAGING)
    assert run(tmp_path / "shop", *args) == 2
    message = " ".join(capsys.readouterr().err.split())
    assert f"cannot {what}: pipeline.yaml gives this project read access only" in message
    assert not (tmp_path / "shop" / ".pipeline").exists()  # nothing was touched


def test_history_of_a_read_only_environment_is_readable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shop(tmp_path / "shop")
    (tmp_path / "shop" / "pipeline.yaml").write_text(READ_STAGING)
    assert run(tmp_path / "shop", "history", "orders", "--env", "staging", "--json") == 0
    assert capsys.readouterr().out.strip() == "[]"
