"""ECS as AWS really answers: task definition identity and logs that work with the standard
execution role.

- ECS returns a task definition's ``environment``, ``secrets``, ``portMappings`` and other
  lists in its own order (https://github.com/aws/aws-sdk-java/issues/3043,
  https://github.com/hashicorp/terraform-provider-aws/issues/3035) and adds defaults to what
  it stores. The realism layer reverses those lists on moto's answers; the contract tests
  feed a described revision shaped like the API reference's example
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTaskDefinition.html).
- ``awslogs-create-group`` needs ``logs:CreateLogGroup``, which
  ``AmazonECSTaskExecutionRolePolicy`` does not grant
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_execution_IAM_role.html,
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html): bootstrap
  creates the group instead.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import boto3

from pipeline.aws.alb.router import service_routes
from pipeline.aws.bootstrap import execute
from pipeline.aws.ecs.bootstrap import plan_ecs_service
from pipeline.aws.ecs.compute import EcsCompute
from pipeline.aws.ecs.taskdef import render, same_definition
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec, HealthCheckSpec
from pipeline.core.model import Slot
from pipeline.testing import FakeClock, release
from tests.adapters.conftest import REGION
from tests.adapters.support.ecs import ACCOUNT, CallLog, bootstrap, orders_spec, register_targets

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)

VARIABLES = (("LOG_LEVEL", "info"), ("REGION", "eu-west-1"), ("FEATURE_X", "on"))
SECRETS = (
    ("API_KEY", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/orders/api"),
    ("DB_PASSWORD", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/orders/db"),
)
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orders@sha256:" + "a" * 64


def compute_for(
    session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> EcsCompute:
    live, test = service_routes(session, env, spec)
    return EcsCompute(session, env, spec, groups=live.groups, test_route=test, clock=clock)


def described(rendered: dict[str, Any]) -> dict[str, Any]:
    """``rendered`` as DescribeTaskDefinition returns it: lists in ECS's own order, defaults
    added (container ``cpu: 0``, empty ``mountPoints``/``volumesFrom``, a port mapping's
    ``hostPort``), and the revision's identity."""
    answer = copy.deepcopy(rendered)
    container = answer["containerDefinitions"][0]
    for key in ("environment", "secrets"):
        container[key] = list(reversed(container.get(key, [])))
    container["portMappings"] = [{**m, "hostPort": m["containerPort"]} for m in container["portMappings"]]
    container.update({"cpu": 0, "mountPoints": [], "volumesFrom": [], "systemControls": []})
    answer.update(
        {
            "taskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/orders:7",
            "revision": 7,
            "status": "ACTIVE",
            "compatibilities": ["EC2", "FARGATE"],
            "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"}],
        }
    )
    return answer


# --- task definition identity: contract (AWS's answer shape) ------------------------------


def test_a_revision_ecs_returns_with_reordered_lists_and_defaults_is_the_same_definition(
    ecs_env: AwsEnvironment,
) -> None:
    wanted = render(ecs_env, orders_spec(environment=VARIABLES, secrets=SECRETS), IMAGE)

    assert same_definition(described(wanted), wanted)


def test_a_changed_variable_value_is_another_definition_in_any_order(ecs_env: AwsEnvironment) -> None:
    old = render(ecs_env, orders_spec(environment=VARIABLES), IMAGE)
    new = render(ecs_env, orders_spec(environment=(*VARIABLES[:2], ("FEATURE_X", "off"))), IMAGE)

    assert not same_definition(described(old), new)


def test_a_revision_with_settings_the_rendering_no_longer_has_is_another_definition(
    ecs_env: AwsEnvironment,
) -> None:
    wanted = render(ecs_env, orders_spec(environment=VARIABLES), IMAGE)
    older = described(wanted)
    options = older["containerDefinitions"][0]["logConfiguration"]["options"]
    options["awslogs-create-group"] = "true"  # what revisions registered before bootstrap made the group had

    assert not same_definition(older, wanted)

    without_check = render(ecs_env, orders_spec(health_check=HealthCheckSpec(container=False)), IMAGE)
    with_check = described(render(ecs_env, orders_spec(), IMAGE))
    assert not same_definition(with_check, without_check)


def test_absent_and_empty_lists_are_the_same(ecs_env: AwsEnvironment) -> None:
    wanted = render(ecs_env, orders_spec(environment=(), secrets=()), IMAGE)
    answer = described(wanted)
    answer["containerDefinitions"][0]["environment"] = []

    assert "environment" not in wanted["containerDefinitions"][0]
    assert same_definition(answer, wanted)


# --- task definition identity: against moto, with the realism layer reversing lists --------


def test_a_service_with_several_variables_is_ready_and_provisioning_again_registers_nothing(
    session: AwsSession, ecs_env: AwsEnvironment, clock: FakeClock
) -> None:
    spec = orders_spec(environment=VARIABLES, secrets=SECRETS)
    bootstrap(session, ecs_env, spec, clock)
    v1 = release("1.0.0")
    compute = compute_for(session, ecs_env, spec, clock)
    compute.provision(Slot.GREEN, v1)
    register_targets(session, spec, Slot.GREEN, spec.desired_count)

    assert compute.health(Slot.GREEN, v1).ready, compute.health(Slot.GREEN, v1).detail
    restarted = compute_for(session, ecs_env, spec, clock)  # another process: compares content
    assert restarted.health(Slot.GREEN, v1).ready

    log = CallLog().attach(session)
    restarted.provision(Slot.GREEN, v1)
    compute_for(session, ecs_env, spec, clock).provision(Slot.BLUE, v1)  # the other slot reuses it too

    assert log.calls["RegisterTaskDefinition"] == 0, log.calls
    assert log.calls["DescribeTaskDefinition"] >= 1
    ecs = boto3.client("ecs", region_name=REGION)
    arns = ecs.list_task_definitions(familyPrefix="orders")["taskDefinitionArns"]
    assert len(arns) == 2, arns  # bootstrap's placeholder and the release's one


def test_health_compares_the_revision_arn_provision_chose(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    v1 = release("1.0.0")
    compute = compute_for(session, ready_env, spec, clock)
    compute.provision(Slot.GREEN, v1)
    register_targets(session, spec, Slot.GREEN, spec.desired_count)
    log = CallLog().attach(session)

    assert compute.health(Slot.GREEN, v1).ready
    assert log.calls["DescribeTaskDefinition"] == 0, "the ARN decides: no revision is described"


# --- logs ------------------------------------------------------------------------------------


def test_bootstrap_creates_the_log_group_with_its_retention_and_tasks_do_not_ask_ecs_to(
    session: AwsSession, ecs_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    env = replace(ecs_env, log_retention_days=14)
    bootstrap(session, env, spec, clock)

    logs = boto3.client("logs", region_name=REGION)
    groups = logs.describe_log_groups(logGroupNamePrefix="/pipeline/aws-test/orders")["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [
        ("/pipeline/aws-test/orders", 14)
    ]
    options = render(env, spec, IMAGE)["containerDefinitions"][0]["logConfiguration"]["options"]
    assert "awslogs-create-group" not in options
    assert options["awslogs-group"] == "/pipeline/aws-test/orders"
    again = [st for st in plan_ecs_service(session, env, spec) if st.kind == "log group"]
    assert [st.action for st in again] == ["exists"]
    assert execute(again) == []


def test_two_services_sharing_one_log_group_both_bootstrap(
    session: AwsSession, ecs_env: AwsEnvironment, clock: FakeClock
) -> None:
    """The environment's ``aws.log_group`` is shared: planned twice, created once, no error."""
    env = replace(ecs_env, log_group="/pipeline/shop")
    first = orders_spec()
    second = orders_spec(name="billing", container="billing", route_path="/billing*", route_priority=20)
    steps = plan_ecs_service(session, env, first) + plan_ecs_service(session, env, second)

    execute(steps)

    logs = boto3.client("logs", region_name=REGION)
    groups = logs.describe_log_groups(logGroupNamePrefix="/pipeline/shop")["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [("/pipeline/shop", 30)]
