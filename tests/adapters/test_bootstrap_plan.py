"""One plan for every kind: the environment's, an ECS service's and a Lambda service's steps
are the same ``BootstrapStep`` type, and the executor runs exactly what the dry run prints."""
# ruff: noqa: F401, F811 - the ``lambda_aws`` fixture is imported, then requested by name

from __future__ import annotations

from pipeline.aws.bootstrap import BootstrapStep, describe, execute, plan_environment
from pipeline.aws.ecs.bootstrap import plan_ecs_service
from pipeline.aws.lambda_.bootstrap import plan
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.testing import FakeClock
from tests.adapters.support.lambda_world import LambdaWorld, lambda_aws

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)


def _plan(
    world: LambdaWorld, env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> list[BootstrapStep]:
    session = world.session
    return (
        plan_environment(session, env, clock)
        + plan_ecs_service(session, env, spec)
        + plan(world.spec(environment=env.name), session, world.clock)
    )


def test_every_planner_returns_the_one_step_type(
    lambda_aws: LambdaWorld, ecs_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    steps = _plan(lambda_aws, ecs_env, spec, clock)

    assert {type(step) for step in steps} == {BootstrapStep}
    assert {"DynamoDB table", "ECS service", "lambda function", "http api"} <= {step.kind for step in steps}


def test_the_executor_creates_exactly_what_the_dry_run_prints(
    lambda_aws: LambdaWorld, ecs_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    steps = _plan(lambda_aws, ecs_env, spec, clock)
    dry_run = describe(steps)
    would_create = [_resource(line) for line in dry_run if line.startswith("create ")]

    created = execute(steps)

    assert [_resource(line) for line in describe(created)] == would_create
    assert len(created) == sum(step.action == "create" for step in steps) > 0
    again = _plan(lambda_aws, ecs_env, spec, clock)
    assert [(st.kind, st.name) for st in again] == [(st.kind, st.name) for st in steps]
    assert {st.action for st in again} == {"exists"}


def _resource(line: str) -> str:
    """A plan line without its action and column padding: ``kind name``."""
    return " ".join(line.split()[1:])
