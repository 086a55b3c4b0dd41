"""ECS timing and failure evidence as AWS produces them.

- Health-check grace period and container ``startPeriod`` come from service.yaml (defaults
  60 s and 30 s), not from interval x threshold; the container check is optional
  (distroless images have no curl or wget).
- A rollout the deployment circuit breaker marked FAILED fails readiness at once, quoting
  the stopped tasks' reasons and exit codes; target health ``initial`` / ``unhealthy`` /
  ``draining`` keeps a slot not ready with the reasons. moto runs no tasks, has no circuit
  breaker and reports every registered target healthy, so these are contract tests with
  ``botocore.stub.Stubber`` fed answers shaped like AWS's (builders in
  ``tests/adapters/support/aws_responses.py`` cite the API reference).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pipeline.aws.alb.router import service_routes
from pipeline.aws.alb.rules import AlbRoute, SlotTargetGroups
from pipeline.aws.ecs.compute import EcsCompute
from pipeline.aws.ecs.taskdef import image_of, render
from pipeline.aws.session import AwsSession, SessionSettings
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec, HealthCheckSpec, ecs_spec
from pipeline.config import load_project
from pipeline.core.errors import ConfigError, PlatformError
from pipeline.core.model import Release, Slot, Weights
from pipeline.core.state import Phase
from pipeline.testing import FakeClock, release
from tests.adapters.conftest import REGION
from tests.adapters.support.aws_responses import (
    ecs_deployment,
    ecs_service,
    stopped_task,
    target_health,
)
from tests.adapters.support.ecs import (
    ACCOUNT,
    STRATEGY,
    bootstrap,
    create_infrastructure,
    harness,
    orders_spec,
    register_targets,
    write_project,
)

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)

CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/shop"
FAMILY_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/orders"
OLD_REV, NEW_REV = f"{FAMILY_ARN}:7", f"{FAMILY_ARN}:8"
ELB = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}"
GROUPS = {
    "orders-blue": f"{ELB}:targetgroup/orders-blue/1111",
    "orders-green": f"{ELB}:targetgroup/orders-green/2222",
}
BREAKER = "ECS deployment circuit breaker: tasks failed to start."
EXITED = "Essential container in task exited"


# --- contract tests: a compute whose ECS and ELB answers are AWS-shaped stubs --------------


@dataclass
class Stubbed:
    compute: EcsCompute
    spec: EcsServiceSpec
    env: AwsEnvironment
    ecs: Stubber
    elbv2: Stubber

    def described(self, arn: str, rel: Release) -> dict[str, Any]:
        """DescribeTaskDefinition of the release's rendering, as ECS stores it (lists reversed)."""
        definition = copy.deepcopy(render(self.env, self.spec, image_of(self.env, self.spec, rel)))
        container = definition["containerDefinitions"][0]
        for key in ("environment", "secrets"):
            container[key] = list(reversed(container.get(key, [])))
        definition.update(
            {"taskDefinitionArn": arn, "revision": int(arn.rsplit(":", 1)[-1]), "status": "ACTIVE"}
        )
        return {"taskDefinition": definition}

    def slot_answers(self, service: dict[str, Any], health: dict[str, Any]) -> None:
        """What ``health`` reads first: the target groups, the service, its target health."""
        self.elbv2.add_response(
            "describe_target_groups",
            {"TargetGroups": [{"TargetGroupName": n, "TargetGroupArn": a} for n, a in GROUPS.items()]},
        )
        self.ecs.add_response("describe_services", service, {"cluster": "shop", "services": ["orders-green"]})
        self.elbv2.add_response("describe_target_health", health, {"TargetGroupArn": GROUPS["orders-green"]})

    def stopped(self, *tasks: dict[str, Any]) -> None:
        arns = [t["taskArn"] for t in tasks]
        self.ecs.add_response(
            "list_tasks",
            {"taskArns": arns},
            {"cluster": "shop", "serviceName": "orders-green", "desiredStatus": "STOPPED"},
        )
        if not tasks:
            return
        self.ecs.add_response(
            "describe_tasks", {"tasks": list(tasks), "failures": []}, {"cluster": "shop", "tasks": arns}
        )


@pytest.fixture
def stubbed(aws: str) -> Iterator[Stubbed]:
    session = AwsSession(SessionSettings(region=REGION, max_attempts=1))
    env = AwsEnvironment(
        name="prod",
        region=REGION,
        account=ACCOUNT,
        cluster="shop",
        listener_arn=f"{ELB}:listener/app/shop/abc/def",
        test_listener_arn=f"{ELB}:listener/app/shop/abc/ghi",
        state_table="pipeline-state",
        ecr_registry=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
    )
    spec = orders_spec(environment=(("A", "1"), ("B", "2")))
    groups = SlotTargetGroups(session, (spec.target_group(Slot.BLUE), spec.target_group(Slot.GREEN)))
    test_route = AlbRoute(session, env.test_listener_arn, spec.route_path, groups)
    compute = EcsCompute(session, env, spec, groups=groups, test_route=test_route, clock=FakeClock(0))
    with Stubber(session.client("ecs")) as ecs, Stubber(session.client("elbv2")) as elbv2:
        yield Stubbed(compute, spec, env, ecs, elbv2)
        ecs.assert_no_pending_responses()
        elbv2.assert_no_pending_responses()


def test_a_rollout_the_circuit_breaker_failed_fails_readiness_at_once_with_the_stopped_tasks_reasons(
    stubbed: Stubbed,
) -> None:
    v2 = release("2.0.0")
    deployments = [
        ecs_deployment(
            NEW_REV, status="PRIMARY", rollout="FAILED", desired=2, running=0, failed=4, reason=BREAKER
        ),
        ecs_deployment(OLD_REV, status="ACTIVE", rollout="COMPLETED", desired=2, running=2),
    ]
    service = ecs_service("orders-green", CLUSTER_ARN, NEW_REV, deployments, desired=2, running=2)
    stubbed.slot_answers(service, target_health(("10.0.1.5", 8000, "healthy", "", "")))
    stubbed.ecs.add_response(
        "describe_task_definition", stubbed.described(NEW_REV, v2), {"taskDefinition": NEW_REV}
    )
    scaled = "Scaling activity initiated by (deployment ecs-svc/1)"
    pull = "CannotPullContainerError: pull image manifest has been retried 5 time(s)"
    stubbed.stopped(
        stopped_task(CLUSTER_ARN, "old1", OLD_REV, "orders-green", stopped_reason=scaled,
                     container="orders", exit_code=0, stopped_at="2026-12-07T10:09:00Z"),
        stopped_task(CLUSTER_ARN, "new1", NEW_REV, "orders-green", stopped_reason=EXITED,
                     container="orders", exit_code=3, stopped_at="2026-12-07T10:05:00Z"),
        stopped_task(CLUSTER_ARN, "new2", NEW_REV, "orders-green", stopped_reason=pull, container="orders",
                     exit_code=None, container_reason="CannotPullContainerError",
                     stopped_at="2026-12-07T10:04:00Z"),
    )  # fmt: skip

    with pytest.raises(PlatformError) as caught:
        stubbed.compute.health(Slot.GREEN, v2)

    message = caught.value.message
    assert f"ECS rollout of {NEW_REV} in orders-green failed: {BREAKER}" in message
    assert "stopped task: Essential container in task exited (orders: exit 3)" in message
    assert "CannotPullContainerError: pull image manifest" in message
    assert message.index("exit 3") < message.index("Scaling activity"), "the failed revision's tasks first"
    assert "deploy again" in caught.value.hint


def test_a_failed_rollout_of_an_older_revision_does_not_fail_the_new_one(stubbed: Stubbed) -> None:
    v2 = release("2.0.0")
    deployments = [
        ecs_deployment(NEW_REV, status="PRIMARY", rollout="IN_PROGRESS", desired=2, running=1),
        ecs_deployment(OLD_REV, status="ACTIVE", rollout="FAILED", desired=2, running=0, reason=BREAKER),
    ]
    service = ecs_service("orders-green", CLUSTER_ARN, NEW_REV, deployments, desired=2, running=1)
    stubbed.slot_answers(
        service, target_health(("10.0.1.5", 8000, "initial", "Elb.RegistrationInProgress", ""))
    )
    stubbed.ecs.add_response(
        "describe_task_definition", stubbed.described(NEW_REV, v2), {"taskDefinition": NEW_REV}
    )
    stubbed.stopped()

    health = stubbed.compute.health(Slot.GREEN, v2)

    assert not health.ready and health.revision_matches
    assert "target 10.0.1.5:8000 initial (Elb.RegistrationInProgress)" in health.detail


def test_initial_unhealthy_and_draining_targets_keep_the_slot_not_ready_with_their_reasons(
    stubbed: Stubbed,
) -> None:
    v2 = release("2.0.0")
    deployments = [ecs_deployment(NEW_REV, status="PRIMARY", rollout="IN_PROGRESS", desired=3, running=3)]
    service = ecs_service("orders-green", CLUSTER_ARN, NEW_REV, deployments, desired=3, running=3,
                          events=("(service orders-green) has started 1 tasks: (task new3).",))  # fmt: skip
    health = target_health(
        ("10.0.1.5", 8000, "healthy", "", ""),
        ("10.0.1.6", 8000, "initial", "Elb.RegistrationInProgress", "Target registration is in progress"),
        (
            "10.0.1.7",
            8000,
            "unhealthy",
            "Target.ResponseCodeMismatch",
            "Health checks failed with these codes: [500]",
        ),
        (
            "10.0.1.8",
            8000,
            "draining",
            "Target.DeregistrationInProgress",
            "Target deregistration is in progress",
        ),
    )
    stubbed.slot_answers(service, health)
    stubbed.ecs.add_response(
        "describe_task_definition", stubbed.described(NEW_REV, v2), {"taskDefinition": NEW_REV}
    )
    oom = "OutOfMemoryError: Container killed due to memory usage"
    stubbed.stopped(
        stopped_task(CLUSTER_ARN, "new0", NEW_REV, "orders-green", stopped_reason=EXITED,
                     container="orders", exit_code=137, container_reason=oom),
    )  # fmt: skip

    result = stubbed.compute.health(Slot.GREEN, v2)

    assert not result.ready and result.healthy < result.desired
    assert (
        "target 10.0.1.6:8000 initial (Elb.RegistrationInProgress: Target registration is in progress)"
        in result.detail
    )
    assert (
        "target 10.0.1.7:8000 unhealthy "
        "(Target.ResponseCodeMismatch: Health checks failed with these codes: [500])" in result.detail
    )
    assert "target 10.0.1.8:8000 draining" in result.detail
    assert (
        "stopped task: Essential container in task exited (orders: exit 137, OutOfMemoryError"
        in result.detail
    )
    assert "event: (service orders-green) has started 1 tasks" in result.detail


def test_a_deployment_whose_rollout_the_circuit_breaker_failed_rolls_back_before_the_ready_timeout(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    """Through the engine: moto has no circuit breaker, so an ``after-call`` hook marks the
    green slot's PRIMARY deployment FAILED the way ECS reports it once the new slot runs."""
    h = harness(session, ready_env, spec, clock)
    register_targets(session, spec, Slot.BLUE, spec.desired_count)
    assert h.deploy("1.0.0").phase is Phase.SUCCEEDED

    def breaker(parsed: dict[str, Any], **_: Any) -> None:
        for service in parsed.get("services", []):
            if service["serviceName"] == "orders-green" and service.get("desiredCount"):
                for deployment in service.get("deployments", []):
                    if deployment.get("status") == "PRIMARY":
                        deployment.update(rolloutState="FAILED", rolloutStateReason=BREAKER)

    session.on("after-call.ecs.DescribeServices", breaker)
    started = clock.now()

    state = h.deploy("2.0.0")

    assert state.phase is Phase.ROLLED_BACK
    assert f"failed: {BREAKER}" in state.reason and "ECS rollout of" in state.reason
    assert clock.now() - started < STRATEGY.timeouts.ready, "failed at once, not at the ready timeout"
    assert h.router.get_weights() == Weights(100, 0)


def test_provisioning_a_revision_whose_rollout_failed_again_forces_a_new_deployment(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    """After a FAILED rollout the slot keeps it as its PRIMARY deployment; redeploying the
    same release (say, after a missing secret was created) must start a new one, or it would
    fail at once again."""
    live, test = service_routes(session, ready_env, spec)
    compute = EcsCompute(session, ready_env, spec, groups=live.groups, test_route=test, clock=clock)
    compute.provision(Slot.GREEN, release("2.0.0"))

    def breaker(parsed: dict[str, Any], **_: Any) -> None:
        for service in parsed.get("services", []):
            for deployment in service.get("deployments", []):
                if deployment.get("status") == "PRIMARY":
                    deployment.update(rolloutState="FAILED", rolloutStateReason=BREAKER)

    session.on("after-call.ecs.DescribeServices", breaker)
    sent: list[dict[str, Any]] = []
    session.on("provide-client-params.ecs.UpdateService", lambda params, **_: sent.append(dict(params)))

    compute.provision(Slot.GREEN, release("2.0.0"))

    assert [p.get("forceNewDeployment") for p in sent] == [True]


# --- against moto: what bootstrap and provision send ---------------------------------------


def test_bootstrap_creates_slots_with_the_configured_grace_period_not_interval_times_threshold(
    session: AwsSession, ecs_env: AwsEnvironment, clock: FakeClock
) -> None:
    sent: list[dict[str, Any]] = []  # moto ignores the grace period of CreateService: read the request
    session.on("provide-client-params.ecs.CreateService", lambda params, **_: sent.append(dict(params)))

    bootstrap(session, ecs_env, orders_spec(), clock)

    assert [p["serviceName"] for p in sent] == ["orders-blue", "orders-green"]
    assert [p["healthCheckGracePeriodSeconds"] for p in sent] == [60, 60]
    assert {p["deploymentConfiguration"]["deploymentCircuitBreaker"]["enable"] for p in sent} == {True}


def test_provision_converges_an_existing_slots_grace_period(
    session: AwsSession, ready_env: AwsEnvironment, clock: FakeClock
) -> None:
    spec = orders_spec(grace_period=180.0)
    live, test = service_routes(session, ready_env, spec)
    compute = EcsCompute(session, ready_env, spec, groups=live.groups, test_route=test, clock=clock)

    compute.provision(Slot.GREEN, release("1.0.0"))

    ecs = boto3.client("ecs", region_name=REGION)
    service = ecs.describe_services(cluster="shop", services=["orders-green"])["services"][0]
    assert service["healthCheckGracePeriodSeconds"] == 180


def test_the_container_check_uses_the_configured_start_period_and_can_be_left_out(
    session: AwsSession, ready_env: AwsEnvironment, clock: FakeClock
) -> None:
    spec = orders_spec(health_check=HealthCheckSpec(interval=5.0, timeout=2.0, start_period=45.0))
    live, test = service_routes(session, ready_env, spec)
    ecs = boto3.client("ecs", region_name=REGION)

    def provisioned(spec: EcsServiceSpec, version: str) -> dict[str, Any]:
        EcsCompute(session, ready_env, spec, groups=live.groups, test_route=test, clock=clock).provision(
            Slot.GREEN, release(version)
        )
        arn = ecs.describe_services(cluster="shop", services=["orders-green"])["services"][0][
            "taskDefinition"
        ]
        container: dict[str, Any] = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"][
            "containerDefinitions"
        ][0]
        return container

    with_check = provisioned(spec, "1.0.0")
    assert with_check["healthCheck"]["startPeriod"] == 45

    distroless = replace(spec, health_check=replace(spec.health_check, container=False))
    without = provisioned(distroless, "1.0.0")  # same release: only the check changed
    assert "healthCheck" not in without, "a revision with the check is not reused for a spec without it"


# --- service.yaml ------------------------------------------------------------------------------


def _orders_yaml(root: Path, ecs_lines: str) -> Path:
    write_project(root, create_infrastructure())
    path = root / "services" / "orders" / "service.yaml"
    path.write_text(path.read_text().replace("  desired_count: 2\n", f"  desired_count: 2\n{ecs_lines}"))
    return root


def test_service_yaml_sets_the_grace_period_start_period_and_container_check(
    aws: str, tmp_path: Path
) -> None:
    root = _orders_yaml(
        tmp_path,
        "  health_check_grace_period: 2m\n  health_check: {start_period: 45s, container: false}\n",
    )

    spec = ecs_spec(load_project(root).service("orders"))

    assert spec.grace_period == 120.0
    assert spec.health_check.start_period == 45.0 and spec.health_check.container is False
    defaults = ecs_spec(load_project(_orders_yaml(tmp_path / "plain", "")).service("orders"))
    assert (defaults.grace_period, defaults.health_check.start_period, defaults.health_check.container) == (
        60.0,
        30.0,
        True,
    )


def test_a_start_period_ecs_cannot_take_is_a_config_error_naming_the_key(aws: str, tmp_path: Path) -> None:
    root = _orders_yaml(tmp_path, "  health_check: {start_period: 10m}\n")

    with pytest.raises(ConfigError) as caught:
        load_project(root)

    [problem] = caught.value.problems
    assert "services/orders/service.yaml:" in problem and "ecs.health_check.start_period" in problem
