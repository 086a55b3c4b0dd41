"""A resumed ECS deployment judges its slot by the revision ARN it registered, kept in the
deployment state (``slot_refs``), not by comparing content.

A run provisions the slot (a service with several variables and secrets, which ECS returns
in its own order: the realism layer reverses them on moto's answers), saves the ARN in the
DynamoDB state and dies. Another process, with a new ``EcsCompute``, resumes it. A revision
of the same family that someone else registered, however equal its content, is not this
deployment's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import boto3
import pytest

from pipeline.aws.ecs.compute import EcsCompute
from pipeline.aws.ecs.taskdef import render
from pipeline.aws.factory import ecs_platform
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.aws.state.lock import DynamoLockManager
from pipeline.aws.state.store import DynamoStateStore
from pipeline.core.model import Release, Slot, SlotHealth
from pipeline.core.state import AwaitReady, DeploymentState, Phase
from pipeline.operations import Context, deploy, resume
from pipeline.testing import ActionLog, CollectingSink, FakeClock, FakeStages, SimulatedCrash, release
from tests.adapters.conftest import REGION
from tests.adapters.support.ecs import (
    ACCOUNT,
    REF,
    STRATEGY,
    CallLog,
    bootstrap,
    orders_spec,
    register_targets,
)

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)

VARIABLES = (("LOG_LEVEL", "info"), ("REGION", "eu-west-1"), ("FEATURE_X", "on"))
SECRETS = (
    ("API_KEY", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/orders/api"),
    ("DB_PASSWORD", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/orders/db"),
)


class DiesAtHealth:
    """The compute of a process killed right after provisioning: its first health check."""

    def __init__(self, compute: EcsCompute) -> None:
        self.compute = compute

    def provision(self, slot: Slot, release: Release) -> str:
        return self.compute.provision(slot, release)

    def recall(self, slot: Slot, release: Release, reference: str) -> None:
        self.compute.recall(slot, release, reference)

    def health(self, slot: Slot, release: Release) -> SlotHealth:
        raise SimulatedCrash("killed after provisioning")

    def scale_down(self, slot: Slot) -> None:
        self.compute.scale_down(slot)

    def endpoint(self, slot: Slot) -> str:
        return self.compute.endpoint(slot)


def context(session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock,
            owner: str, *, dies: bool = False) -> Context:
    """A process: its own platform (a new EcsCompute), the environment's DynamoDB store."""
    platform = ecs_platform(session, env, spec, clock, FakeStages(ActionLog()))
    if dies:
        assert isinstance(platform.compute, EcsCompute)
        platform = replace(platform, compute=DiesAtHealth(platform.compute))
    return Context(
        store=DynamoStateStore(session, env.state_table),
        locks=DynamoLockManager(session, env.state_table, clock),
        clock=clock,
        sink=CollectingSink(),
        platform_for=lambda ref: platform,
        actor="tester",
        owner=owner,
    )


@pytest.fixture
def crashed(
    session: AwsSession, ecs_env: AwsEnvironment, clock: FakeClock
) -> tuple[EcsServiceSpec, DeploymentState]:
    """A first deployment of 1.0.0 to blue, killed after provisioning; its lease expired."""
    spec = orders_spec(environment=VARIABLES, secrets=SECRETS)
    bootstrap(session, ecs_env, spec, clock)
    with pytest.raises(SimulatedCrash):
        dying = context(session, ecs_env, spec, clock, "ci@runner:1", dies=True)
        deploy(dying, REF, release("1.0.0"), STRATEGY)
    clock.advance(31)  # the dead run's lease expires
    saved = DynamoStateStore(session, ecs_env.state_table).load(REF)
    assert saved is not None and saved.pending == AwaitReady(Slot.BLUE)
    return spec, saved


def slot_revision(env: AwsEnvironment, service: str) -> str:
    ecs = boto3.client("ecs", region_name=REGION)
    described = ecs.describe_services(cluster=env.cluster, services=[service])["services"][0]
    return str(described["taskDefinition"])


def register_equal_revision(env: AwsEnvironment, spec: EcsServiceSpec, image: str) -> str:
    """Someone else registers a revision of the family with the same content."""
    ecs = boto3.client("ecs", region_name=REGION)
    definition: dict[str, Any] = render(env, spec, image)
    return str(ecs.register_task_definition(**definition)["taskDefinition"]["taskDefinitionArn"])


def test_the_state_keeps_the_revision_arn_and_a_resumed_run_is_ready_by_it(
    session: AwsSession, ecs_env: AwsEnvironment, clock: FakeClock,
    crashed: tuple[EcsServiceSpec, DeploymentState],
) -> None:
    spec, saved = crashed
    assert saved.ref_of(Slot.BLUE) == slot_revision(ecs_env, "orders-blue")
    assert saved.ref_of(Slot.BLUE).startswith(f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/orders:")
    register_targets(session, spec, Slot.BLUE, spec.desired_count)
    log = CallLog().attach(session)

    state = resume(context(session, ecs_env, spec, clock, "ci@runner:2"), REF)

    assert state.phase is Phase.SUCCEEDED, state.reason
    assert log.calls["DescribeTaskDefinition"] == 0, "the stored ARN decides: no content compared"
    assert log.calls["RegisterTaskDefinition"] == 0


def test_a_revision_someone_else_registered_for_the_family_is_not_the_deployments(
    session: AwsSession, ecs_env: AwsEnvironment, clock: FakeClock,
    crashed: tuple[EcsServiceSpec, DeploymentState],
) -> None:
    spec, saved = crashed
    ours = saved.ref_of(Slot.BLUE)
    image = f"{ecs_env.ecr_registry}/orders@{saved.release.digest}"
    theirs = register_equal_revision(ecs_env, spec, image)
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.update_service(cluster=ecs_env.cluster, service="orders-blue", taskDefinition=theirs)
    register_targets(session, spec, Slot.BLUE, spec.desired_count)
    compute = context(session, ecs_env, spec, clock, "ci@runner:2").platform_for(REF).compute
    assert isinstance(compute, EcsCompute)

    assert compute.health(Slot.BLUE, saved.release).ready, "by content alone it would count"
    compute.recall(Slot.BLUE, saved.release, ours)
    health = compute.health(Slot.BLUE, saved.release)

    assert not health.ready and not health.revision_matches
    assert f"orders-blue runs {theirs}" in health.detail
    log = CallLog().attach(session)
    assert compute.provision(Slot.BLUE, saved.release) == ours  # provisioning again restores ours
    assert slot_revision(ecs_env, "orders-blue") == ours
    assert log.calls["RegisterTaskDefinition"] == 0
    assert compute.health(Slot.BLUE, saved.release).ready
