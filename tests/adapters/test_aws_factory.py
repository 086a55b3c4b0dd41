"""AwsFactory wires the AWS adapters from a project on disk (moto behind it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.app import App
from pipeline.aws.alb.metrics import CloudWatchMetrics
from pipeline.aws.alb.router import WEIGHT_SETTLE_SECONDS, AlbListenerRouter
from pipeline.aws.ecs.compute import EcsCompute
from pipeline.aws.factory import AwsFactory
from pipeline.aws.settings import AwsEnvironment
from pipeline.aws.state.lock import DynamoLockManager
from pipeline.aws.state.store import DynamoStateStore
from pipeline.config import load_project
from pipeline.core.errors import PlatformError
from pipeline.core.model import Weights
from pipeline.testing import FakeClock
from pipeline.wiring import PlatformFactory
from tests.adapters.support.ecs import (
    bootstrap,
    orders_spec,
    write_project,
)

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)


@pytest.fixture
def factory(ecs_env: AwsEnvironment, tmp_path: Path, clock: FakeClock) -> AwsFactory:
    write_project(tmp_path, ecs_env)
    return AwsFactory(load_project(tmp_path), clock, actor="tester", max_attempts=2)


def test_builds_the_ecs_platform_and_dynamo_stores_of_an_environment(
    factory: AwsFactory, ecs_env: AwsEnvironment, clock: FakeClock
) -> None:
    as_port: PlatformFactory = factory
    env = factory.project.environment("aws-test")
    session = factory.session(env)
    bootstrap(session, ecs_env, orders_spec(port=8000), clock)

    store, locks = as_port.stores(env)
    platform = as_port.platform(env, factory.project.service("orders"))

    assert isinstance(store, DynamoStateStore) and store.table == "pipeline-state"
    assert isinstance(locks, DynamoLockManager)
    assert isinstance(platform.compute, EcsCompute) and platform.compute.spec.desired_count == 2
    assert isinstance(platform.router, AlbListenerRouter) and isinstance(platform.metrics, CloudWatchMetrics)
    assert type(platform.stages).__name__ == "ServiceStageRunner"
    assert platform.router.get_weights() == Weights(100, 0)  # the real rule, through the assumed role
    assert factory.session(env) is session
    assert session.credentials_expiry() is not None  # pipeline.yaml names a role: it was assumed
    assert type(as_port.registry(env)).__name__ == "EcrRegistry"


def test_a_lambda_service_without_a_lambda_section_is_a_clear_platform_error(factory: AwsFactory) -> None:
    service = factory.project.service("orders").model_copy(update={"kind": "lambda"})

    with pytest.raises(PlatformError) as caught:
        factory.platform(factory.project.environment("aws-test"), service)

    assert "its service.yaml has no `lambda:` section" in caught.value.message
    assert "lambda:" in caught.value.hint


def test_ecs_slots_wait_only_for_the_weights_to_settle_not_the_deregistration_delay_on_aws(
    factory: AwsFactory, ecs_env: AwsEnvironment, clock: FakeClock
) -> None:
    """ECS drains a scaled-down slot's targets for the deregistration delay itself; the engine
    holds only long enough for the ALB nodes to apply the verified weights."""
    service = factory.project.service("orders")
    assert service.ecs is not None and service.ecs.deregistration_delay > 0

    shaped = App(factory.project.root, clock).strategy("orders", "aws-test")

    assert shaped.drain_seconds == WEIGHT_SETTLE_SECONDS
    env = factory.project.environment("aws-test")
    assert factory.strategy(env, service, replace(shaped, drain_seconds=0.0)) == shaped


def test_the_aws_rules_leave_a_lambda_services_strategy_unchanged(factory: AwsFactory) -> None:
    service = factory.project.service("orders").model_copy(update={"kind": "lambda", "ecs": None})
    strategy = App(factory.project.root).strategy("orders", "aws-test")
    undrained = replace(strategy, drain_seconds=0.0)

    env = factory.project.environment("aws-test")
    assert factory.strategy(env, service, undrained) == undrained
