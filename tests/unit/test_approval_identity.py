"""Approvals count by an identity the caller cannot set. ``PIPELINE_ACTOR``, ``GITHUB_ACTOR``
and ``$USER`` only label a record; the OS account (from the password database) is an
unverified identity, accepted only where the environment allows it; an STS caller ARN
matches ``aws:`` member patterns."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
import yaml

from pipeline.app import App
from pipeline.config import load_project
from pipeline.console.render import ConsoleSink
from pipeline.core.errors import ConfigError
from pipeline.core.model import Missing, ServiceRef
from pipeline.core.ports import Record
from pipeline.identity import Identity, is_member, os_account
from pipeline.promotion import approve, check_requirements
from pipeline.requirements import Requirements
from pipeline.testing import release
from tests.unit.support.engine import World
from tests.unit.support.fake_cli import FakeFactory, code, install
from tests.unit.support.operators import ME, project_with_members
from tests.unit.support.project import REPO_ROOT, WriteProject

PROD = ServiceRef("orders", "prod")
OPS = Requirements(approval="ops", approvers=frozenset({"carol"}), unverified=True)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeFactory]:
    return install(monkeypatch)


def promoted_to_staging() -> None:
    for env in ("dev", "staging"):
        assert code("deploy", "orders", "--env", env, "--ref", "v1")[0] == 0


def prod_missing(fake: type[FakeFactory], root: Path = REPO_ROOT) -> tuple[Missing, ...]:
    app = App(root_hint=root)
    staging = fake.store.load(ServiceRef("orders", "staging"))
    assert staging is not None
    ctx = app.context("prod", ConsoleSink())
    return check_requirements(ctx, PROD, staging.release, app.requirements("prod"))


def test_pipeline_actor_naming_an_ops_member_does_not_satisfy_prods_approval(fake: type[FakeFactory]) -> None:
    promoted_to_staging()
    exit_code, _out, err = code("approve", "orders", "--env", "prod", PIPELINE_ACTOR="carol", USER="carol")
    assert exit_code == 5
    assert f"{ME} (OS account, unverified) cannot approve for prod: not a member of ops" in err
    assert [item.kind for item in prod_missing(fake)] == ["approval"]
    exit_code, _out, err = code("approve", "orders", "--env", "prod", GITHUB_ACTOR="carol")
    assert exit_code == 5 and [item.kind for item in prod_missing(fake)] == ["approval"]


def test_an_approve_record_with_an_ops_members_name_but_no_proven_identity_does_not_count() -> None:
    world = World()
    v1 = release("v1")
    forged = Record(ts=1.0, ref=PROD, deployment="", actor="carol", action="approve", digest=v1.digest,
                    data={"release": v1.to_dict(), "organisation": "ops"}, kind="audit")  # fmt: skip
    world.store.commit(None, [forged])
    assert check_requirements(world.ctx(), PROD, v1, OPS) == (Missing("approval", "prod", "ops"),)


def test_the_os_account_approves_where_it_is_a_member_and_the_label_is_kept(
    fake: type[FakeFactory], tmp_path: Path
) -> None:
    root = project_with_members(tmp_path)
    for env in ("dev", "staging"):
        assert code("deploy", "orders", "--env", env, "--ref", "v1", root=root)[0] == 0
    exit_code, _out, err = code(
        "approve", "orders", "--env", "prod", root=root, PIPELINE_ACTOR="mallory", COLUMNS="200"
    )
    assert exit_code == 0, err
    assert f"as {ME} (OS account, unverified) (ops)" in err
    assert prod_missing(fake, root) == ()
    (record,) = [r for r in fake.store.history(PROD) if r.action == "approve"]
    assert record.actor == "mallory"  # the label, as set
    assert record.data["identity"] == {"name": ME, "source": "os", "verified": False}


def test_an_environment_that_denies_unverified_identities_refuses_an_os_account_approval(
    fake: type[FakeFactory], tmp_path: Path
) -> None:
    root = project_with_members(tmp_path)
    path = root / "pipeline.yaml"
    path.write_text(path.read_text().replace(
        "requires: {approval: ops, passed: [staging]}\n    local: {port: 8300}",
        "requires: {approval: ops, passed: [staging], unverified: deny}\n    local: {port: 8300}",
    ))  # fmt: skip
    for env in ("dev", "staging"):
        assert code("deploy", "orders", "--env", env, "--ref", "v1", root=root)[0] == 0
    exit_code, _out, err = code("approve", "orders", "--env", "prod", root=root)
    assert exit_code == 5
    assert "cannot approve for prod: it accepts only verified identities" in err
    assert prod_missing(fake, root) == (Missing("approval", "prod", "ops"),)


def test_unverified_identities_count_by_default_on_local_environments_only(tmp_path: Path) -> None:
    root = project_with_members(tmp_path)
    app = App(root_hint=root)
    assert app.requirements("prod").unverified is True  # platform: local
    assert app.requirements("aws-prod").unverified is False  # platform: aws
    assert app.requirements("aws-prod").approvers == frozenset({"carol", ME})


def test_the_os_account_comes_from_the_password_database_not_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "carol")
    monkeypatch.setenv("LOGNAME", "carol")
    assert os_account() == Identity(pwd.getpwuid(os.getuid()).pw_name, "os")


def test_members_match_logins_exactly_and_sts_arns_by_aws_patterns() -> None:
    members = (
        "carol",
        "aws:arn:aws:sts::123456789012:assumed-role/ops-admin/*",
        "aws:arn:aws:iam::123456789012:user/dan",
    )
    ops_role = "arn:aws:sts::123456789012:assumed-role/ops-admin/carol@example.com"
    assert is_member(Identity(ops_role, "aws-sts"), members, unverified=False)
    assert is_member(Identity("arn:aws:iam::123456789012:user/dan", "aws-sts"), members, unverified=False)
    assert not is_member(Identity("arn:aws:sts::123456789012:assumed-role/dev/carol", "aws-sts"), members,
                         unverified=False)  # fmt: skip
    assert not is_member(Identity("arn:aws:sts::999999999999:assumed-role/ops-admin/x", "aws-sts"), members,
                         unverified=False)  # fmt: skip
    assert not is_member(Identity("carol", "aws-sts"), members, unverified=False)  # a login is no ARN
    assert is_member(Identity("carol", "os"), members, unverified=True)
    assert not is_member(Identity("carol", "os"), members, unverified=False)
    assert not is_member(Identity("carolyn", "os"), members, unverified=True)
    assert not is_member(Identity("aws:arn:aws:iam::123456789012:user/dan", "os"), members, unverified=True)


def test_an_sts_identity_approval_counts_where_unverified_ones_do_not() -> None:
    world = World()
    v1 = release("v1")
    ops_role = "aws:arn:aws:sts::123456789012:assumed-role/ops/*"
    req = Requirements(approval="ops", approvers=frozenset({ops_role}))
    approve(world.ctx(actor="carol"), PROD, v1, "ops", Identity("carol", "os"))
    assert check_requirements(world.ctx(), PROD, v1, req) == (Missing("approval", "prod", "ops"),)
    arn = "arn:aws:sts::123456789012:assumed-role/ops/carol"
    approve(world.ctx(), PROD, v1, "ops", Identity(arn, "aws-sts"))
    assert check_requirements(world.ctx(), PROD, v1, req) == ()


@pytest.mark.parametrize("path", ["pipeline.yaml", "ops/pipeline.yaml"])
def test_the_example_configs_do_not_make_root_an_ops_member(path: str) -> None:
    config = yaml.safe_load((REPO_ROOT / path).read_text())
    assert "root" not in config["organisations"]["ops"]["members"]


def test_a_member_that_is_neither_a_login_nor_an_sts_arn_pattern_is_reported_at_its_line(
    write_project: WriteProject,
) -> None:
    root = write_project(
        """
        project: shop
        organisations:
          ops:
            members: [carol, "aws:carol"]
        environments:
          prod: {platform: local, owner: ops, local: {port: 8300}}
        """
    )
    with pytest.raises(ConfigError) as error:
        load_project(root)
    text = str(error.value)
    assert "pipeline.yaml:4: organisations.ops.members[1]" in text
    assert "'aws:carol'" in text and "aws:arn:aws:sts::123456789012:assumed-role/ops-admin/*" in text
