"""``pipeline iam-policy`` assembles the actions each sub-package declares, by policy and
service kind, and scopes them to the project's resources.

No AWS calls here: the assembly is pure. ``test_iam_policy`` proves on moto that the
declared actions are exactly the ones the adapters call, bootstrap and deploy apart.

The deploy policy must not be a path to any permission: no IAM write at all, ``PassRole``
only on the named roles and only towards the service that runs them, ALB and API Gateway
writes only on the project's resources, and no deleting the state table's records.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from moto.iam.access_control import IAMPolicyStatement, PermissionResult

from pipeline.aws import bootstrap, sns
from pipeline.aws.alb import permissions as alb
from pipeline.aws.ecr import permissions as ecr
from pipeline.aws.ecs import permissions as ecs
from pipeline.aws.iam import DECLARED, POLICY_KINDS, PolicyKind, ServiceKinds, actions, policy, policy_actions
from pipeline.aws.lambda_ import permissions as lambda_
from pipeline.aws.settings import AwsEnvironment
from pipeline.aws.state import permissions as state
from pipeline.aws.state import table
from pipeline.cli.main import main
from pipeline.core.model import ServiceRef
from tests.adapters.support.ecs import write_project

ENV = AwsEnvironment(
    vpc_id="vpc-0a1b2c3d4e5f60718",
    subnets=("subnet-0a1b2c3d4e5f60718",),
    security_groups=("sg-0123456789abcdef0",),
    ecr_registry="123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    name="aws-test",
    region="eu-west-1",
    account="123456789012",
    cluster="shop",
    listener_arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/1/2",
    test_listener_arn="arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/1/3",
    state_table="pipeline-state",
    execution_role_arn="arn:aws:iam::123456789012:role/shop-ecs-execution",
    task_role_arn="arn:aws:iam::123456789012:role/shop-orders-task",
)
ECS_ONLY = ServiceKinds(ecs=("orders",))
LAMBDA_ONLY = ServiceKinds(lambda_=("notify",))
BOTH = ServiceKinds(ecs=("orders",), lambda_=("notify",))
ALL_KINDS = [ECS_ONLY, LAMBDA_ONLY, BOTH, ServiceKinds()]


def statements(kind: PolicyKind, kinds: ServiceKinds = BOTH) -> list[dict[str, Any]]:
    return list(policy(ENV, kinds, kind=kind)["Statement"])


def resources(statement: dict[str, Any]) -> list[str]:
    found = statement["Resource"]
    return [found] if isinstance(found, str) else list(found)


def is_write(action: str) -> bool:
    name = action.split(":", 1)[1]
    return name != "GET" and not name.startswith(("Describe", "Get", "List"))


# --- declarations ----------------------------------------------------------------------


def test_every_sub_package_that_calls_aws_is_declared_for_some_kind() -> None:
    declared = {group for kinds in DECLARED.values() for groups in kinds.values() for group in groups}
    packages = {state.IAM_ACTIONS, ecr.IAM_ACTIONS, ecs.IAM_ACTIONS, alb.IAM_ACTIONS, lambda_.IAM_ACTIONS}
    assert packages | {bootstrap.IAM_ACTIONS} <= declared
    assert all(group for group in declared)  # a package with nothing to declare is not listed


def test_a_kinds_actions_appear_in_the_policy_only_when_the_project_has_that_kind() -> None:
    for kind in POLICY_KINDS:
        ecs_policy = policy_actions(policy(ENV, ECS_ONLY, kind=kind))
        lambda_policy = policy_actions(policy(ENV, LAMBDA_ONLY, kind=kind))
        assert "lambda:PublishVersion" in lambda_policy and "lambda:PublishVersion" not in ecs_policy
        assert "ecs:UpdateService" in ecs_policy and "ecs:UpdateService" not in lambda_policy
        rule = "elasticloadbalancing:ModifyRule"
        assert rule in ecs_policy and rule not in lambda_policy
        assert "apigateway:GET" in lambda_policy and "apigateway:GET" not in ecs_policy


@pytest.mark.parametrize("kinds", ALL_KINDS)
def test_the_state_table_and_ecr_actions_are_always_allowed(kinds: ServiceKinds) -> None:
    assert actions(kinds, DECLARED["bootstrap"]) >= state.IAM_ACTIONS | ecr.IAM_ACTIONS
    assert actions(kinds) >= (state.IAM_ACTIONS - table.IAM_ACTIONS) | ecr.IAM_ACTIONS


def test_the_bootstrap_policy_is_every_declaration_of_the_projects_kinds() -> None:
    declared = DECLARED["bootstrap"]
    always = state.IAM_ACTIONS | ecr.IAM_ACTIONS | sns.IAM_ACTIONS  # sns:Publish on notify.sns only
    assert actions(ECS_ONLY, declared) == always | ecs.IAM_ACTIONS | alb.IAM_ACTIONS | bootstrap.IAM_ACTIONS
    assert actions(LAMBDA_ONLY, declared) == always | lambda_.IAM_ACTIONS
    assert actions(BOTH, declared) == actions(ECS_ONLY, declared) | actions(LAMBDA_ONLY, declared)


@pytest.mark.parametrize("kinds", ALL_KINDS)
def test_the_deploy_policy_is_part_of_the_bootstrap_policy(kinds: ServiceKinds) -> None:
    assert actions(kinds) <= actions(kinds, DECLARED["bootstrap"])


def test_a_new_declaration_reaches_the_policy_of_its_kind_only() -> None:
    tagging = frozenset({"lambda:TagResource"})
    declared = {**DECLARED["deploy"], "lambda": (*DECLARED["deploy"]["lambda"], tagging)}

    assert "lambda:TagResource" in policy_actions(policy(ENV, LAMBDA_ONLY, declared))
    assert "lambda:TagResource" not in policy_actions(policy(ENV, ECS_ONLY, declared))


# --- the deploy policy is not a path to any permission ---------------------------------


@pytest.mark.parametrize("kinds", ALL_KINDS)
def test_the_deploy_policy_writes_nothing_in_iam(kinds: ServiceKinds) -> None:
    allowed = policy_actions(policy(ENV, kinds))
    assert {a for a in allowed if a.startswith("iam:")} <= {"iam:PassRole"}
    bootstrap_only = {"iam:CreateRole", "iam:PutRolePolicy", "iam:GetRole", "lambda:AddPermission"}
    assert not allowed & bootstrap_only


def test_the_bootstrap_policy_may_create_the_lambda_role_and_nothing_else_in_iam() -> None:
    iam = [st for st in statements("bootstrap") if any(a.startswith("iam:") for a in st["Action"])]
    role = "arn:aws:iam::123456789012:role/pipeline-aws-test-lambda"
    writes = [st for st in iam if {"iam:CreateRole", "iam:PutRolePolicy"} & set(st["Action"])]
    assert writes and all(resources(st) == [role] for st in writes)


@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_pass_role_names_the_projects_roles_and_the_service_they_are_passed_to(kind: PolicyKind) -> None:
    passes = [st for st in statements(kind) if "iam:PassRole" in st["Action"]]
    by_service = {st["Condition"]["StringEquals"]["iam:PassedToService"]: resources(st) for st in passes}
    assert by_service == {
        "ecs-tasks.amazonaws.com": [ENV.execution_role_arn, ENV.task_role_arn],
        "lambda.amazonaws.com": ["arn:aws:iam::123456789012:role/pipeline-aws-test-lambda"],
    }
    assert all(st["Action"] == ["iam:PassRole"] for st in passes)  # the condition binds PassRole alone


SCOPED_SERVICES = ["elasticloadbalancing", "apigateway", "iam", "lambda", "logs", "dynamodb"]


@pytest.mark.parametrize("kind", POLICY_KINDS)
@pytest.mark.parametrize("service", SCOPED_SERVICES)
def test_writes_are_scoped_to_the_projects_resources_never_star(kind: PolicyKind, service: str) -> None:
    def writes_of_service(st: dict[str, Any]) -> bool:
        return any(a.startswith(f"{service}:") and is_write(a) for a in st["Action"])

    writes = [st for st in statements(kind) if writes_of_service(st)]
    assert writes or (kind, service) in {("deploy", "apigateway"), ("deploy", "logs")}
    for st in writes:
        assert "*" not in resources(st), st


def test_listener_rules_are_the_environments_two_listeners_only() -> None:
    modify = next(st for st in statements("deploy") if "elasticloadbalancing:ModifyRule" in st["Action"])
    assert resources(modify) == [
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/shop/1/2/*",
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/shop/1/3/*",
    ]


def test_the_deploy_policy_only_reads_api_gateway() -> None:
    allowed = policy_actions(policy(ENV, BOTH))
    assert {a for a in allowed if a.startswith("apigateway:")} == {"apigateway:GET"}
    assert "apigateway:POST" in policy_actions(policy(ENV, BOTH, kind="bootstrap"))


def test_without_listeners_no_rule_may_be_changed_rather_than_every_rule() -> None:
    bare = AwsEnvironment(
        "bare", "eu-west-1", "123456789012", "c", listener_arn="", test_listener_arn="", state_table="t"
    )
    allowed = policy_actions(policy(bare, ECS_ONLY, kind="bootstrap"))
    assert "elasticloadbalancing:ModifyRule" not in allowed
    assert "elasticloadbalancing:CreateRule" not in allowed


@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_records_of_the_state_table_cannot_be_deleted(kind: PolicyKind) -> None:
    """Either no DeleteItem at all (the store deletes nothing), or only in the lease
    partitions: never in a deployment's partition, where its records are."""
    records = table.deployment_pk(ServiceRef("orders", "aws-test"))
    for declared in (DECLARED[kind], {**DECLARED[kind], "always": (frozenset({"dynamodb:DeleteItem"}),)}):
        document = policy(ENV, BOTH, declared, kind=kind)
        for st in document["Statement"]:
            if "dynamodb:DeleteItem" not in st["Action"]:
                continue
            assert st["Action"] == ["dynamodb:DeleteItem"]
            leading = st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            assert leading == table.lock_pk("*")
            assert not records.startswith(leading.rstrip("*"))


# --- the command -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [None, "deploy", "bootstrap"])
def test_the_command_prints_the_policy_of_the_kind_asked_for(
    kind: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, ENV)
    extra = [] if kind is None else ["--kind", kind]

    assert main(["--root", str(tmp_path), "iam-policy", "--env", "aws-test", *extra]) == 0

    allowed = policy_actions(json.loads(capsys.readouterr().out))
    assert ("elasticloadbalancing:CreateRule" in allowed) is (kind == "bootstrap")  # deploy by default
    assert "elasticloadbalancing:ModifyRule" in allowed


def test_the_command_refuses_an_unknown_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, ENV)
    assert main(["--root", str(tmp_path), "iam-policy", "--env", "aws-test", "--kind", "admin"]) == 2
    assert "'admin' is not one of 'deploy', 'bootstrap'" in capsys.readouterr().err


# --- a second opinion: moto's own IAM policy evaluator -------------------------------------
# moto evaluates actions, resources (with wildcards) and StringEquals conditions; it does
# not enforce IAM on its endpoints by default, so this checks the documents, not the calls.

ACCOUNT_ROLE = "arn:aws:iam::123456789012:role/"
OTHER_LISTENER_RULE = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/other/9/9/1"
OWN_LISTENER_RULE = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/shop/1/2/77"


def permits(kind: PolicyKind, action: str, resource: str, **conditions: str) -> bool:
    """Whether some statement allows the request. Statement by statement, because moto's
    whole-policy answer treats an Allow whose condition does not hold as a Deny, where AWS
    just does not apply it (the policies here have no Deny statements)."""
    return any(
        IAMPolicyStatement(st).is_action_permitted(action, resource, None, conditions)
        is PermissionResult.PERMITTED
        for st in policy(ENV, BOTH, kind=kind)["Statement"]
    )


@pytest.mark.parametrize("action", ["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"])
@pytest.mark.parametrize("role", ["pipeline-aws-test-lambda", "shop-ecs-execution", "admin"])
def test_the_evaluator_denies_the_deploy_role_every_iam_write(action: str, role: str) -> None:
    assert not permits("deploy", action, ACCOUNT_ROLE + role)


def test_the_evaluator_lets_bootstrap_write_only_the_lambda_role() -> None:
    assert permits("bootstrap", "iam:CreateRole", ACCOUNT_ROLE + "pipeline-aws-test-lambda")
    assert not permits("bootstrap", "iam:CreateRole", ACCOUNT_ROLE + "admin")
    assert not permits("bootstrap", "iam:AttachRolePolicy", ACCOUNT_ROLE + "pipeline-aws-test-lambda")


@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_the_evaluator_passes_roles_only_to_their_service(kind: PolicyKind) -> None:
    execution = ENV.execution_role_arn
    to = "iam:PassedToService"
    assert permits(kind, "iam:PassRole", execution, **{to: "ecs-tasks.amazonaws.com"})
    assert not permits(kind, "iam:PassRole", execution, **{to: "ec2.amazonaws.com"})
    assert not permits(kind, "iam:PassRole", ACCOUNT_ROLE + "admin", **{to: "ecs-tasks.amazonaws.com"})
    lambda_role = ACCOUNT_ROLE + "pipeline-aws-test-lambda"
    assert permits(kind, "iam:PassRole", lambda_role, **{to: "lambda.amazonaws.com"})
    assert not permits(kind, "iam:PassRole", lambda_role, **{to: "ecs-tasks.amazonaws.com"})


def test_the_evaluator_scopes_rules_functions_and_the_table() -> None:
    assert permits("deploy", "elasticloadbalancing:ModifyRule", OWN_LISTENER_RULE)
    assert not permits("deploy", "elasticloadbalancing:ModifyRule", OTHER_LISTENER_RULE)
    function = "arn:aws:lambda:eu-west-1:123456789012:function:"
    assert permits("deploy", "lambda:UpdateFunctionCode", function + "notify-aws-test")
    assert not permits("deploy", "lambda:UpdateFunctionCode", function + "payments-prod")
    table_arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/pipeline-state"
    assert permits("deploy", "dynamodb:PutItem", table_arn)
    assert not permits("deploy", "dynamodb:DeleteItem", table_arn)
    assert not permits("deploy", "apigateway:POST", "arn:aws:apigateway:eu-west-1::/apis")


def test_every_module_that_declares_actions_reaches_a_policy() -> None:
    """A guard for new adapters: every ``IAM_ACTIONS`` and ``BOOTSTRAP_ACTIONS`` under
    ``pipeline/aws`` is in the bootstrap policy's declarations, every ``DEPLOY_ACTIONS``
    in the deploy policy's,
    so a call cannot be added without its permission reaching ``pipeline iam-policy``."""
    root = Path(bootstrap.__file__).parent
    everything = {a for groups in DECLARED["bootstrap"].values() for group in groups for a in group}
    deployable = {a for groups in DECLARED["deploy"].values() for group in groups for a in group}
    missing = []
    for path in sorted(root.rglob("*.py")):
        module = importlib.import_module(".".join(path.relative_to(root.parent.parent).with_suffix("").parts))
        checks = (("IAM_ACTIONS", everything), ("BOOTSTRAP_ACTIONS", everything))
        for name, policy_actions_ in (*checks, ("DEPLOY_ACTIONS", deployable)):
            declared = getattr(module, name, frozenset())
            if declared - policy_actions_:
                missing.append(f"{module.__name__}.{name}: {sorted(declared - policy_actions_)}")
    assert missing == []


def test_account_wide_lambda_actions_are_granted_on_star_not_on_a_function() -> None:
    """``lambda:GetAccountSettings`` has no resource type: scoped to a function ARN, AWS
    would deny it (the reserved-concurrency pre-check could never run)."""
    document = policy(ENV, LAMBDA_ONLY)
    granted = [st for st in document["Statement"] if "lambda:GetAccountSettings" in st["Action"]]
    assert granted and all(resources(st) == ["*"] for st in granted)


@pytest.mark.parametrize("kind", POLICY_KINDS)
def test_a_project_without_ecs_services_may_not_write_to_any_ecr_repository(kind: PolicyKind) -> None:
    """Zip functions use no image: no repository of the project to scope ECR writes to,
    so none is granted (rather than every repository of the account)."""
    document = policy(ENV, LAMBDA_ONLY, kind=kind)
    allowed = policy_actions(document)
    assert [a for a in allowed if a.startswith("ecr:") and is_write(a)] == []
