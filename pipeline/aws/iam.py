"""The least-privilege IAM policy of an environment's deploy role (``pipeline iam-policy``).

Actions come from the adapters themselves: every module of ``pipeline.aws`` that calls AWS
declares ``IAM_ACTIONS`` (a set of ``service:Action`` strings) next to the calls, so a new
call and its permission change together, and each sub-package's ``permissions`` module
declares the union of its modules. ``DECLARED`` lists, per service kind, the sub-packages
that kind uses (``ecs``: ``ecs``, ``alb`` and the environment checks of
``pipeline.aws.bootstrap``; ``lambda``: ``lambda_``); ``ALWAYS`` the ones every project
uses (the state table, ECR).

Resources are scoped to the project: ARNs built from the environment's partition, region,
account, cluster, listeners and state table and from the service names (slot services,
target groups, repositories). Actions AWS does not scope by resource (the
``Describe*``/``List*`` reads, ``RegisterTaskDefinition``, ``GetMetricData``,
``GetAuthorizationToken``) get ``*``.

Lambda functions, their execution role and the HTTP API are scoped by the Lambda adapters'
``pipeline.aws.lambda_.spec.iam_resources``. ``iam:PassRole`` carries the condition
``iam:PassedToService``: ``ecs-tasks.amazonaws.com`` for the task roles, and
``lambda.amazonaws.com`` for the function role.

``AUTHORIZATION_ONLY`` lists the actions no API call is named after (so a recording of the
calls cannot show them): ``iam:PassRole``, checked when a task definition names roles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.aws import bootstrap
from pipeline.aws.alb import permissions as alb
from pipeline.aws.ecr import permissions as ecr
from pipeline.aws.ecs import permissions as ecs
from pipeline.aws.lambda_ import permissions as lambda_
from pipeline.aws.lambda_.spec import iam_resources
from pipeline.aws.settings import AwsEnvironment, target_group_name
from pipeline.aws.state import permissions as state
from pipeline.core.model import Slot

AUTHORIZATION_ONLY = frozenset({"iam:PassRole"})

# API operations whose permission is named differently (a transaction needs its items' actions)
IMPLIED_BY_OPERATION: dict[str, frozenset[str]] = {
    "dynamodb:TransactWriteItems": frozenset({"dynamodb:PutItem"}),
}
_SIGNING_PREFIX = {"monitoring": "cloudwatch"}

# The sub-packages each service kind deploys with, by their declared actions
DECLARED: dict[str, tuple[frozenset[str], ...]] = {
    "always": (state.IAM_ACTIONS, ecr.IAM_ACTIONS),
    "ecs": (ecs.IAM_ACTIONS, alb.IAM_ACTIONS, bootstrap.IAM_ACTIONS),
    "lambda": (lambda_.IAM_ACTIONS,),
}


@dataclass(frozen=True, slots=True)
class ServiceKinds:
    """The project's services by kind (``ecs`` / ``lambda``)."""

    ecs: tuple[str, ...] = ()
    lambda_: tuple[str, ...] = ()


def iam_actions_of_call(signing_name: str, operation: str) -> frozenset[str]:
    """The IAM actions an API call needs (``elasticloadbalancing`` + ``ModifyRule`` -> ...)."""
    action = f"{_SIGNING_PREFIX.get(signing_name, signing_name)}:{operation}"
    return IMPLIED_BY_OPERATION.get(action, frozenset({action}))


def actions(
    services: ServiceKinds, declared: Mapping[str, tuple[frozenset[str], ...]] = DECLARED
) -> frozenset[str]:
    """The union of the actions ``declared`` for ``always`` and for the kinds the project has."""
    kinds = ["always"] + (["ecs"] if services.ecs else []) + (["lambda"] if services.lambda_ else [])
    return frozenset(action for kind in kinds for group in declared.get(kind, ()) for action in group)


def policy(
    env: AwsEnvironment,
    services: ServiceKinds,
    declared: Mapping[str, tuple[frozenset[str], ...]] = DECLARED,
) -> dict[str, Any]:
    """The policy document: one statement per (resources, condition), actions sorted."""
    grouped: dict[Grant, set[str]] = {}
    for action in sorted(actions(services, declared)):
        for grant in grants(action, env, services):
            grouped.setdefault(grant, set()).add(action)
    statements = []
    for index, (grant, acts) in enumerate(sorted(grouped.items()), start=1):
        statement: dict[str, Any] = {
            "Sid": f"Pipeline{index}",
            "Effect": "Allow",
            "Action": sorted(acts),
            "Resource": list(grant.resources) if len(grant.resources) > 1 else grant.resources[0],
        }
        if grant.passed_to:
            statement["Condition"] = {"StringEquals": {"iam:PassedToService": grant.passed_to}}
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def policy_actions(document: Mapping[str, Any]) -> frozenset[str]:
    """Every action a policy document allows."""
    return frozenset(a for st in document["Statement"] for a in st["Action"])


@dataclass(frozen=True, order=True, slots=True)
class Grant:
    """Where an action is allowed: ARNs, and for ``iam:PassRole`` the service it may pass to."""

    resources: tuple[str, ...]
    passed_to: str = ""


def grants(action: str, env: AwsEnvironment, services: ServiceKinds) -> list[Grant]:
    """The grants ``action`` needs for ``env``'s services (``*`` when AWS cannot scope it)."""
    if action == "iam:PassRole":
        return _pass_role(env, services)
    prefix, _, name = action.partition(":")
    scope = _SCOPES.get(prefix)
    scoped = scope(name, _Arns(env), services) if scope else []
    if not scoped and services.lambda_:
        scoped = _lambda_resources(action, env, services)
    return [Grant(tuple(scoped) if scoped else ("*",))]


def _pass_role(env: AwsEnvironment, services: ServiceKinds) -> list[Grant]:
    found: list[Grant] = []
    if services.ecs:
        roles = tuple(r for r in (env.execution_role(), env.task_role_arn) if r)
        found.append(Grant(roles, "ecs-tasks.amazonaws.com"))
    if services.lambda_:
        roles = tuple(_lambda_resources("iam:PassRole", env, services)) or ("*",)
        found.append(Grant(roles, "lambda.amazonaws.com"))
    return found


def _lambda_resources(action: str, env: AwsEnvironment, services: ServiceKinds) -> list[str]:
    """The Lambda adapters' own scoping (``pipeline.aws.lambda_.spec.iam_resources``)."""
    return iam_resources(
        action,
        partition=env.partition,
        region=env.region,
        account=env.account,
        environment=env.name,
        services=services.lambda_,
        role_arn=env.lambda_role_arn,
    )


@dataclass(frozen=True, slots=True)
class _Arns:
    env: AwsEnvironment

    def of(self, service: str) -> str:
        """``arn:<partition>:<service>:<region>:<account>:``"""
        e = self.env
        return f"arn:{e.partition}:{service}:{e.region}:{e.account}:"


def _dynamodb(name: str, arns: _Arns, kinds: ServiceKinds) -> list[str]:
    return [f"{arns.of('dynamodb')}table/{arns.env.state_table}"]


def _ecs(name: str, arns: _Arns, kinds: ServiceKinds) -> list[str]:
    cluster, ecs = arns.env.cluster, arns.of("ecs")
    if name in {"UpdateService", "DescribeServices", "CreateService"}:
        return [f"{ecs}service/{cluster}/{s}-{slot.value}" for s in kinds.ecs for slot in Slot]
    if name == "DescribeTasks":
        return [f"{ecs}task/{cluster}/*"]
    if name == "DescribeClusters":
        return [f"{ecs}cluster/{cluster}"]
    return []


def _elb(name: str, arns: _Arns, kinds: ServiceKinds) -> list[str]:
    if name == "ModifyRule":
        return [_rules_of(listener) for listener in _listeners(arns.env)]
    if name == "CreateRule":
        return list(_listeners(arns.env))
    if name in {"CreateTargetGroup", "ModifyTargetGroupAttributes"}:
        elb = arns.of("elasticloadbalancing")
        return [f"{elb}targetgroup/{target_group_name(s, slot)}/*" for s in kinds.ecs for slot in Slot]
    return []


def _ecr(name: str, arns: _Arns, kinds: ServiceKinds) -> list[str]:
    if name == "GetAuthorizationToken" or not kinds.ecs:
        return []
    return [f"{arns.of('ecr')}repository/{s}" for s in kinds.ecs]


_SCOPES: dict[str, Callable[[str, _Arns, ServiceKinds], list[str]]] = {
    "dynamodb": _dynamodb,
    "ecs": _ecs,
    "elasticloadbalancing": _elb,
    "ecr": _ecr,
}


def _listeners(env: AwsEnvironment) -> tuple[str, ...]:
    return tuple(dict.fromkeys((env.listener_arn, env.test_listener_arn)))


def _rules_of(listener_arn: str) -> str:
    """``...:listener/app/x/y/z`` -> ``...:listener-rule/app/x/y/z/*``."""
    return listener_arn.replace(":listener/", ":listener-rule/", 1) + "/*"
