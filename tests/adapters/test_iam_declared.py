"""``pipeline iam-policy`` assembles the actions each sub-package declares, by service kind.

No AWS calls here: the assembly is pure. ``test_iam_policy`` proves on moto that the
declared actions are exactly the ones the adapters call.
"""

from __future__ import annotations

import pytest

from pipeline.aws import bootstrap
from pipeline.aws.alb import permissions as alb
from pipeline.aws.ecr import permissions as ecr
from pipeline.aws.ecs import permissions as ecs
from pipeline.aws.iam import DECLARED, ServiceKinds, actions, policy, policy_actions
from pipeline.aws.lambda_ import permissions as lambda_
from pipeline.aws.settings import AwsEnvironment
from pipeline.aws.state import permissions as state

ENV = AwsEnvironment(
    name="aws-test",
    region="eu-west-1",
    account="123456789012",
    cluster="shop",
    listener_arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/1/2",
    test_listener_arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/1/3",
    state_table="pipeline-state",
)
ECS_ONLY = ServiceKinds(ecs=("orders",))
LAMBDA_ONLY = ServiceKinds(lambda_=("notify",))
BOTH = ServiceKinds(ecs=("orders",), lambda_=("notify",))


def test_every_sub_package_that_calls_aws_is_declared_for_some_kind() -> None:
    declared = {group for groups in DECLARED.values() for group in groups}
    packages = {state.IAM_ACTIONS, ecr.IAM_ACTIONS, ecs.IAM_ACTIONS, alb.IAM_ACTIONS, lambda_.IAM_ACTIONS}
    assert packages | {bootstrap.IAM_ACTIONS} == declared
    assert all(group for group in declared)  # a package with nothing to declare is not listed


def test_a_kinds_actions_appear_in_the_policy_only_when_the_project_has_that_kind() -> None:
    ecs_policy = policy_actions(policy(ENV, ECS_ONLY))
    lambda_policy = policy_actions(policy(ENV, LAMBDA_ONLY))

    assert "lambda:PublishVersion" in lambda_policy and "lambda:PublishVersion" not in ecs_policy
    assert "ecs:UpdateService" in ecs_policy and "ecs:UpdateService" not in lambda_policy
    rule = "elasticloadbalancing:ModifyRule"
    assert rule in ecs_policy and rule not in lambda_policy
    assert "apigateway:POST" in lambda_policy and "apigateway:POST" not in ecs_policy


@pytest.mark.parametrize("kinds", [ECS_ONLY, LAMBDA_ONLY, BOTH, ServiceKinds()])
def test_the_state_table_and_ecr_actions_are_always_allowed(kinds: ServiceKinds) -> None:
    assert actions(kinds) >= state.IAM_ACTIONS | ecr.IAM_ACTIONS


def test_the_policy_is_the_union_of_the_declarations_of_the_projects_kinds() -> None:
    assert actions(ECS_ONLY) == state.IAM_ACTIONS | ecr.IAM_ACTIONS | ecs.IAM_ACTIONS | alb.IAM_ACTIONS | (
        bootstrap.IAM_ACTIONS
    )
    assert actions(LAMBDA_ONLY) == state.IAM_ACTIONS | ecr.IAM_ACTIONS | lambda_.IAM_ACTIONS
    assert actions(BOTH) == actions(ECS_ONLY) | actions(LAMBDA_ONLY)


def test_a_new_declaration_reaches_the_policy_of_its_kind_only() -> None:
    declared = {**DECLARED, "lambda": (*DECLARED["lambda"], frozenset({"lambda:TagResource"}))}

    assert "lambda:TagResource" in policy_actions(policy(ENV, LAMBDA_ONLY, declared))
    assert "lambda:TagResource" not in policy_actions(policy(ENV, ECS_ONLY, declared))
