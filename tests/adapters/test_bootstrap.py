"""``pipeline bootstrap`` and ``pipeline iam-policy`` on moto: plan, create once, then nothing."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from pipeline.aws.bootstrap import describe, execute, plan_environment
from pipeline.aws.ecs.bootstrap import plan_ecs_service
from pipeline.aws.iam import ServiceKinds, policy
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.cli.main import main
from pipeline.core.errors import NotFoundError
from pipeline.testing import FakeClock
from tests.adapters.conftest import REGION
from tests.adapters.support.ecs import (
    CallLog,
    write_project,
)

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)

CREATES = {
    "CreateTable",
    "CreateTargetGroup",
    "CreateRule",
    "RegisterTaskDefinition",
    "CreateService",
    "CreateRepository",
    "ModifyTargetGroupAttributes",
    "PutLifecyclePolicy",
    "CreateLogGroup",
    "PutRetentionPolicy",
}


def plan(session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock) -> list[str]:
    return describe(plan_environment(session, env, clock) + plan_ecs_service(session, env, spec))


def test_creates_what_is_missing_and_a_second_run_creates_nothing(
    session: AwsSession, ecs_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    first = plan_environment(session, ecs_env, clock) + plan_ecs_service(session, ecs_env, spec)
    assert [(st.action, st.kind) for st in first] == [
        ("create", "DynamoDB table"),
        ("exists", "ECS cluster"),
        ("exists", "ALB listener"),
        ("exists", "ALB listener"),
        ("create", "ECR repository"),
        ("create", "log group"),
        ("create", "target group"),
        ("create", "target group"),
        ("create", "listener rule"),
        ("create", "listener rule"),
        ("create", "task definition"),
        ("create", "ECS service"),
        ("create", "ECS service"),
    ]
    assert len(execute(first)) == 10

    log = CallLog().attach(session)
    second = plan_environment(session, ecs_env, clock) + plan_ecs_service(session, ecs_env, spec)
    assert {st.action for st in second} == {"exists"}
    assert execute(second) == []
    assert not CREATES & set(log.calls), log.calls

    elbv2 = boto3.client("elbv2", region_name=REGION)
    group = elbv2.describe_target_groups(Names=["orders-green"])["TargetGroups"][0]
    assert (group["TargetType"], group["Port"], group["HealthCheckPath"]) == ("ip", 8000, "/health")
    attributes = elbv2.describe_target_group_attributes(TargetGroupArn=group["TargetGroupArn"])["Attributes"]
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "10"} in attributes
    ecs = boto3.client("ecs", region_name=REGION)
    services = ecs.describe_services(cluster="shop", services=["orders-blue", "orders-green"])["services"]
    assert [(s["desiredCount"], s["loadBalancers"][0]["containerPort"]) for s in services] == [
        (0, 8000),
        (0, 8000),
    ]


def test_a_missing_cluster_stops_before_anything_is_created(
    session: AwsSession, ecs_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    from dataclasses import replace

    elsewhere = replace(ecs_env, cluster="nope")
    steps = plan_environment(session, elsewhere, clock) + plan_ecs_service(session, elsewhere, spec)
    assert "missing ECS cluster" in " ".join(describe(steps)).replace("  ", " ")

    with pytest.raises(NotFoundError, match="ECS cluster nope does not exist"):
        execute(steps)

    assert boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"] == []


# --- the commands, on a project written to disk ------------------------------------------


def test_the_bootstrap_command_dry_runs_then_creates(
    ecs_env: AwsEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, ecs_env)
    argv = ["--root", str(tmp_path), "bootstrap", "--env", "aws-test", "orders"]

    assert main([*argv, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "create  target group     orders-blue" in dry
    assert "exists  ECS cluster      shop" in dry
    assert boto3.client("ecs", region_name=REGION).list_services(cluster="shop")["serviceArns"] == []

    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 0
    again = capsys.readouterr()
    assert "create" not in again.out and "created 0" in again.err


def test_the_iam_policy_command_prints_a_policy_scoped_to_the_project(
    ecs_env: AwsEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, ecs_env)

    assert main(["--root", str(tmp_path), "iam-policy", "--env", "aws-test"]) == 0

    document = json.loads(capsys.readouterr().out)
    by_action = {a: st["Resource"] for st in document["Statement"] for a in st["Action"]}
    assert by_action["ecs:UpdateService"] == [
        "arn:aws:ecs:eu-west-1:123456789012:service/shop/orders-blue",
        "arn:aws:ecs:eu-west-1:123456789012:service/shop/orders-green",
    ]
    assert by_action["dynamodb:PutItem"] == "arn:aws:dynamodb:eu-west-1:123456789012:table/pipeline-state"
    assert all(
        arn.startswith("arn:aws:elasticloadbalancing:") and ":listener-rule/app/shop/" in arn
        for arn in by_action["elasticloadbalancing:ModifyRule"]
    )
    assert by_action["iam:PassRole"] == "arn:aws:iam::123456789012:role/shop-ecs-execution"
    assert not any(a.startswith("lambda:") for a in by_action)  # no Lambda service in this project


def test_commands_refuse_a_local_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pipeline.yaml").write_text(
        "project: shop\norganisations: {dev: {}}\n"
        "environments:\n  dev: {platform: local, owner: dev, local: {port: 8100}}\n"
    )
    assert main(["--root", str(tmp_path), "iam-policy", "--env", "dev"]) == 2
    assert "runs on the local platform" in capsys.readouterr().err


def test_the_policy_of_a_project_with_lambda_services_scopes_them_too(ecs_env: AwsEnvironment) -> None:
    document = policy(ecs_env, ServiceKinds(ecs=("orders",), lambda_=("notify",)))

    statements = document["Statement"]
    passes = [st for st in statements if "iam:PassRole" in st["Action"]]
    assert {st["Condition"]["StringEquals"]["iam:PassedToService"] for st in passes} == {
        "ecs-tasks.amazonaws.com",
        "lambda.amazonaws.com",
    }
    functions = next(st["Resource"] for st in statements if "lambda:PublishVersion" in st["Action"])
    assert "arn:aws:lambda:eu-west-1:123456789012:function:notify-aws-test" in functions
    repositories = next(st["Resource"] for st in statements if "ecr:CreateRepository" in st["Action"])
    assert repositories == "arn:aws:ecr:eu-west-1:123456789012:repository/orders"  # zips, no image
