"""On an AWS environment the approver is who AWS says the caller is: the ARN that
``sts:GetCallerIdentity`` returns for the caller's own credentials (moto's STS over real
HTTP), matched against ``aws:`` member patterns; ``PIPELINE_ACTOR`` changes nothing, and
the OS account does not count there (unverified identities are denied on AWS)."""

from __future__ import annotations

import shutil
from pathlib import Path

import boto3
import pytest
import yaml

from pipeline.app import App
from pipeline.aws.factory import AwsFactory
from pipeline.aws.state.table import ensure_table
from pipeline.console.render import ConsoleSink
from pipeline.core.model import Missing, ServiceRef
from pipeline.identity import Identity, os_account
from pipeline.operations import Context
from pipeline.promotion import approve, check_requirements
from pipeline.testing import FakeClock, release

REPO_ROOT = Path(__file__).resolve().parents[2]
PROD = ServiceRef("orders", "aws-prod")
OPS_ROLE = "arn:aws:sts::123456789012:assumed-role/ops-admin/*"


def project(tmp_path: Path, ops_members: list[str]) -> Path:
    """The example project with ``organisations.ops.members`` set to ``ops_members``."""
    root = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "services", root / "services", ignore=shutil.ignore_patterns("tests"))
    config = yaml.safe_load((REPO_ROOT / "pipeline.yaml").read_text())
    config["organisations"]["ops"]["members"] = ops_members
    for env in config["environments"].values():  # one account, the caller's: no deploy roles
        env.get("aws", {}).pop("role_arn", None)
    (root / "pipeline.yaml").write_text(yaml.safe_dump(config))
    return root


def as_role(monkeypatch: pytest.MonkeyPatch, role: str, session: str) -> str:
    """Switch this process's credentials to a session of ``role`` (moto's STS); its ARN."""
    iam = boto3.Session().client("iam")
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    answer = boto3.Session().client("sts").assume_role(RoleArn=arn, RoleSessionName=session)
    creds = answer["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])
    return str(answer["AssumedRoleUser"]["Arn"])


def prod_context(app: App) -> Context:
    """aws-prod's context, its state table created in moto."""
    env = app.environment("aws-prod")
    factory = app.factory(env)
    assert isinstance(factory, AwsFactory)
    ensure_table(factory.session(env), env.aws.state_table if env.aws else "", FakeClock())
    return app.context("aws-prod", ConsoleSink())


def test_the_callers_sts_arn_approves_when_it_matches_an_ops_member_pattern(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = as_role(monkeypatch, "ops-admin", "carol")
    assert arn == "arn:aws:sts::123456789012:assumed-role/ops-admin/carol"
    monkeypatch.setenv("PIPELINE_ACTOR", "mallory")  # a label: changes nothing below
    app = App(root_hint=project(tmp_path, ["carol", f"aws:{OPS_ROLE}"]))
    identity = app.identity("aws-prod")
    assert identity == Identity(arn, "aws-sts") and identity.verified
    v1 = release("v1")
    ctx = prod_context(app)
    req = app.requirements("aws-prod")
    assert Missing("approval", "aws-prod", "ops") in check_requirements(ctx, PROD, v1, req)
    approve(ctx, PROD, v1, "ops", identity)
    assert Missing("approval", "aws-prod", "ops") not in check_requirements(ctx, PROD, v1, req)


def test_another_role_and_the_os_account_do_not_approve_on_aws(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_role(monkeypatch, "dev-deployer", "carol")  # session name "carol", but not the Ops role
    me = os_account().name
    app = App(root_hint=project(tmp_path, ["carol", me, f"aws:{OPS_ROLE}"]))
    ctx = prod_context(app)
    req = app.requirements("aws-prod")
    assert req.unverified is False  # AWS environments deny unverified identities by default
    v1 = release("v1")
    approve(ctx, PROD, v1, "ops", app.identity("aws-prod"))
    approve(ctx, PROD, v1, "ops", os_account())  # listed by name, but only the OS's word
    assert Missing("approval", "aws-prod", "ops") in check_requirements(ctx, PROD, v1, req)
