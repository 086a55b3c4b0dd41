"""EcsCompute and AlbListenerRouter against moto's server over HTTP.

Target health is injected by registering IP targets (see ``tests.adapters.support.ecs``); running counts
are moto's own (``UpdateService`` sets ``runningCount`` to the desired count).
"""

from __future__ import annotations

import boto3
import pytest

from pipeline.aws.alb.router import AlbListenerRouter, service_routes
from pipeline.aws.ecs.compute import EcsCompute
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.core.errors import NotFoundError, PlatformError
from pipeline.core.model import Slot, Weights
from pipeline.testing import FakeClock, release
from tests.adapters.conftest import REGION
from tests.adapters.support.ecs import (
    CallLog,
    desired_count,
    register_targets,
)

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)


def compute_for(
    session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> EcsCompute:
    live, test = service_routes(session, env, spec)
    return EcsCompute(session, env, spec, groups=live.groups, test_route=test, clock=clock)


def test_provision_registers_a_pinned_revision_and_updates_the_slot(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    v1 = release("1.0.0")
    compute = compute_for(session, ready_env, spec, clock)

    compute.provision(Slot.GREEN, v1)

    ecs = boto3.client("ecs", region_name=REGION)
    service = ecs.describe_services(cluster="shop", services=["orders-green"])["services"][0]
    assert service["desiredCount"] == 2
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    container = definition["containerDefinitions"][0]
    assert container["image"] == f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/orders@{v1.digest}"
    assert container["memory"] == 512 and definition["cpu"] == "256" and definition["memory"] == "512"
    assert container["portMappings"] == [{"containerPort": 8000, "protocol": "tcp"}]
    assert container["environment"] == [{"name": "LOG_LEVEL", "value": "info"}]
    assert container["secrets"][0]["valueFrom"].endswith(":parameter/orders/db")
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/pipeline/aws-test/orders"
    assert "http://localhost:8000/health" in container["healthCheck"]["command"][1]
    assert definition["executionRoleArn"].endswith(":role/shop-ecs-execution")
    _, test_route = service_routes(session, ready_env, spec)
    assert test_route.read() == Weights.all_to(Slot.GREEN)


def test_provisioning_again_changes_nothing(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    compute = compute_for(session, ready_env, spec, clock)
    compute.provision(Slot.GREEN, release("1.0.0"))
    log = CallLog().attach(session)

    compute_for(session, ready_env, spec, clock).provision(Slot.GREEN, release("1.0.0"))  # a new process

    mutations = {"RegisterTaskDefinition", "UpdateService", "ModifyRule"}
    assert not mutations & set(log.calls), log.calls


def test_provision_reuses_a_revision_registered_before_a_crash(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    from pipeline.aws.ecs.taskdef import image_of, render

    v2 = release("2.0.0")
    ecs = boto3.client("ecs", region_name=REGION)
    registered = ecs.register_task_definition(**render(ready_env, spec, image_of(ready_env, spec, v2)))
    log = CallLog().attach(session)

    compute_for(session, ready_env, spec, clock).provision(Slot.BLUE, v2)

    assert "RegisterTaskDefinition" not in log.calls
    service = ecs.describe_services(cluster="shop", services=["orders-blue"])["services"][0]
    assert service["taskDefinition"] == registered["taskDefinition"]["taskDefinitionArn"]


def test_health_is_ready_only_with_this_revision_and_every_target_healthy(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    v1, v2 = release("1.0.0"), release("2.0.0")
    compute = compute_for(session, ready_env, spec, clock)
    compute.provision(Slot.GREEN, v1)

    no_targets = compute.health(Slot.GREEN, v1)
    assert not no_targets.ready
    assert (no_targets.running, no_targets.desired, no_targets.healthy) == (2, 2, 0)
    assert "no targets registered in target group orders-green" in no_targets.detail

    register_targets(session, spec, Slot.GREEN, 2)
    ready = compute.health(Slot.GREEN, v1)
    assert ready.ready and ready.healthy == 2 and ready.detail == ""

    other = compute.health(Slot.GREEN, v2)
    assert not other.ready and not other.revision_matches
    assert "orders-green runs arn:aws:ecs:" in other.detail


def test_health_detail_names_failing_targets_and_stopped_tasks(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    v1 = release("1.0.0")
    compute = compute_for(session, ready_env, spec, clock)
    compute.provision(Slot.GREEN, v1)
    register_targets(session, spec, Slot.GREEN, 2)
    # inject: a third target that fails (a stopped instance) and a task that stopped
    ec2 = boto3.client("ec2", region_name=REGION)
    instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    elbv2 = boto3.client("elbv2", region_name=REGION)
    group = elbv2.describe_target_groups(Names=["orders-green"])["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": instance, "Port": 8000}])
    ec2.stop_instances(InstanceIds=[instance])
    ecs = boto3.client("ecs", region_name=REGION)
    # (a bridge-mode definition: moto fails to start awsvpc tasks outside a service)
    probe = ecs.register_task_definition(
        family="orders-probe", containerDefinitions=[{"name": "orders", "image": "x", "memory": 128}]
    )["taskDefinition"]["taskDefinitionArn"]
    task = ecs.run_task(
        cluster="shop", taskDefinition=probe, launchType="FARGATE", group="service:orders-green"
    )
    ecs.stop_task(cluster="shop", task=task["tasks"][0]["taskArn"], reason="Essential container exited")

    health = compute.health(Slot.GREEN, v1)

    assert not health.ready
    assert health.healthy < health.desired  # two healthy targets are not enough when a third fails
    assert f"target {instance}:8000 unused (Target.InvalidState" in health.detail
    assert "stopped task: Essential container exited" in health.detail


def test_scale_down_leaves_draining_to_ecs_and_does_not_wait_the_deregistration_delay(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    """ECS deregisters a scaled-down service's targets and stops its tasks only after the
    target group's deregistration delay: waiting it here too would double it."""
    compute = compute_for(session, ready_env, spec, clock)
    compute.provision(Slot.BLUE, release("1.0.0"))

    compute.scale_down(Slot.BLUE)
    assert clock.slept == 0
    assert desired_count(ready_env, "orders-blue") == 0

    compute.scale_down(Slot.BLUE)  # already down: no update
    assert desired_count(ready_env, "orders-blue") == 0


def test_endpoint_is_the_test_listener_url_routed_to_that_slot(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    compute = compute_for(session, ready_env, spec, clock)

    url = compute.endpoint(Slot.GREEN)

    dns = boto3.client("elbv2", region_name=REGION).describe_load_balancers()["LoadBalancers"][0]["DNSName"]
    assert url == f"http://{dns}:8080/orders"
    _, test_route = service_routes(session, ready_env, spec)
    assert test_route.read() == Weights.all_to(Slot.GREEN)


def test_a_missing_slot_service_points_at_bootstrap(
    session: AwsSession, ecs_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    with pytest.raises(NotFoundError) as caught:
        compute_for(session, ecs_env, spec, clock).provision(Slot.BLUE, release("1.0.0"))
    assert "orders-blue does not exist in cluster shop" in caught.value.message
    assert "pipeline bootstrap" in caught.value.hint


# --- the router ---------------------------------------------------------------------------


def test_router_sets_weights_and_reads_them_back(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec
) -> None:
    live, _ = service_routes(session, ready_env, spec)
    router = AlbListenerRouter(live)
    assert router.get_weights() == Weights(100, 0)  # bootstrap: all to blue
    log = CallLog().attach(session)

    router.set_weights(Weights(80, 20))
    assert router.get_weights() == Weights(80, 20)
    router.set_weights(Weights(80, 20))  # idempotent: no second ModifyRule

    assert log.calls["ModifyRule"] == 1
    rule = boto3.client("elbv2", region_name=REGION).describe_rules(ListenerArn=ready_env.listener_arn)[
        "Rules"
    ]
    forward = next(r for r in rule if not r["IsDefault"])["Actions"][0]["ForwardConfig"]["TargetGroups"]
    # ELB lists a rule's target groups in no promised order (the realism layer reverses them)
    weights = {g["TargetGroupArn"].split("/")[-2]: g["Weight"] for g in forward}
    assert weights == {spec.target_group(Slot.BLUE): 80, spec.target_group(Slot.GREEN): 20}


def test_router_without_a_rule_reads_none_and_refuses_to_write(
    session: AwsSession, ecs_env: AwsEnvironment, spec: EcsServiceSpec
) -> None:
    live, _ = service_routes(session, ecs_env, spec)
    router = AlbListenerRouter(live)
    assert router.get_weights() is None
    with pytest.raises(NotFoundError, match="no listener rule for path /orders\\*"):
        router.set_weights(Weights(0, 100))


def test_router_refuses_a_rule_that_forwards_elsewhere(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec
) -> None:
    elbv2 = boto3.client("elbv2", region_name=REGION)
    other = elbv2.create_target_group(
        Name="intruder", Protocol="HTTP", Port=80, VpcId=ready_env.vpc_id, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    rule = next(
        r for r in elbv2.describe_rules(ListenerArn=ready_env.listener_arn)["Rules"] if not r["IsDefault"]
    )
    elbv2.modify_rule(RuleArn=rule["RuleArn"], Actions=[{"Type": "forward", "TargetGroupArn": other}])
    live, _ = service_routes(session, ready_env, spec)

    with pytest.raises(PlatformError, match="neither slot of this service"):
        AlbListenerRouter(live).get_weights()
