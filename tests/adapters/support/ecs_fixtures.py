"""Fixtures of the ECS adapter tests; test modules load them with
``pytest_plugins = ("tests.adapters.support.ecs_fixtures",)``. Helpers are in ``tests.adapters.support.ecs``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.testing import FakeClock
from tests.adapters.support.ecs import START, bootstrap, create_infrastructure, new_session, orders_spec


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def ecs_env(aws: str) -> AwsEnvironment:
    return create_infrastructure()


@pytest.fixture
def session(aws: str) -> Iterator[AwsSession]:
    yield new_session()


@pytest.fixture
def spec() -> EcsServiceSpec:
    return orders_spec()


@pytest.fixture
def ready_env(
    session: AwsSession, ecs_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> AwsEnvironment:
    """``ecs_env`` with the orders service bootstrapped (table, groups, rules, slots)."""
    bootstrap(session, ecs_env, spec, clock)
    return ecs_env
