"""The least-privilege IAM policies of an environment (``pipeline iam-policy``).

Two policies, for two kinds of principal:

- ``deploy``: the role CI assumes to push, deploy, roll back and promote. No IAM writes at
  all (no ``CreateRole``/``PutRolePolicy``/``Attach*``...), so it cannot grant itself or a
  workload more than it has; ``iam:PassRole`` only on the project's named execution and
  task roles and only towards the service that runs them (``iam:PassedToService``); ALB
  listener rules only on the environment's two listeners; API Gateway read only; the
  state table without deleting anything but leases (audit records stay).
- ``bootstrap``: for the people who run ``pipeline bootstrap`` (create the table, target
  groups, rules, slot services, the Lambda execution role, the HTTP API): everything
  bootstrap calls, plus the deploy policy (one human role can set up and try).

Actions come from the adapters themselves: every module of ``pipeline.aws`` that calls AWS
declares ``IAM_ACTIONS`` next to the calls, and each sub-package's ``permissions`` module
declares their union and, where the package does both, which of them a deployment needs
(``DEPLOY_ACTIONS``) and which only bootstrap does. ``DECLARED`` lists, per policy and
per service kind, the declarations used (``always``: state table, ECR).

Resources are scoped to the project: ARNs built from the environment's partition, region,
account, cluster, listeners, state table and log group and from the service names (slot
services, target groups, repositories). Actions AWS does not scope by resource (the
``Describe*``/``List*`` reads, ``RegisterTaskDefinition``, ``GetMetricData``,
``GetAuthorizationToken``) get ``*``. Lambda functions, their execution role and the HTTP
APIs are scoped by ``pipeline.aws.lambda_.spec.iam_resources``.

``AUTHORIZATION_ONLY`` lists the actions no API call is named after (so a recording of the
calls cannot show them): ``iam:PassRole``, checked when a task definition names roles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.aws import bootstrap, sns
from pipeline.aws.alb import permissions as alb
from pipeline.aws.apigw import permissions as apigw
from pipeline.aws.ecr import permissions as ecr
from pipeline.aws.ecs import permissions as ecs
from pipeline.aws.lambda_ import permissions as lambda_
from pipeline.aws.lambda_.spec import iam_resources
from pipeline.aws.settings import AwsEnvironment, target_group_name
from pipeline.aws.state import permissions as state
from pipeline.aws.state import table
from pipeline.core.model import Slot

PolicyKind = Literal["deploy", "bootstrap"]
POLICY_KINDS: tuple[PolicyKind, ...] = ("deploy", "bootstrap")

AUTHORIZATION_ONLY = frozenset({"iam:PassRole"})

# API operations whose permission is named differently: a write transaction needs each of
# its items' actions (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
# transaction-apis-iam.html), by the item's kind
IMPLIED_BY_OPERATION: dict[str, frozenset[str]] = {
    "dynamodb:TransactWriteItems": frozenset({"dynamodb:PutItem"}),
    # S3 authorises these operations by other names (Amazon S3 "Actions, resources, and
    # condition keys": HeadBucket needs s3:ListBucket)
    "s3:HeadBucket": frozenset({"s3:ListBucket"}),
    "s3:PutPublicAccessBlock": frozenset({"s3:PutBucketPublicAccessBlock"}),
    "lambda:Invoke": frozenset({"lambda:InvokeFunction"}),
}
_TRANSACT_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
_SIGNING_PREFIX = {"monitoring": "cloudwatch"}

Declarations = Mapping[str, tuple[frozenset[str], ...]]

# The state package's table module creates the table (bootstrap); the rest is the store.
_STATE_DEPLOY = state.IAM_ACTIONS - table.IAM_ACTIONS

# What each policy allows, per service kind, by the sub-packages' declarations
DECLARED: dict[PolicyKind, dict[str, tuple[frozenset[str], ...]]] = {
    "deploy": {
        "always": (_STATE_DEPLOY, ecr.IAM_ACTIONS, sns.IAM_ACTIONS),  # `pipeline push` creates its repository
        "ecs": (ecs.DEPLOY_ACTIONS, alb.IAM_ACTIONS),
        "lambda": (lambda_.DEPLOY_ACTIONS,),
        "edge": (apigw.DEPLOY_ACTIONS,),  # services with an api: block (REST API)
    },
    "bootstrap": {
        "always": (state.IAM_ACTIONS, ecr.IAM_ACTIONS, sns.IAM_ACTIONS),
        "ecs": (ecs.IAM_ACTIONS, alb.IAM_ACTIONS, bootstrap.IAM_ACTIONS),
        "lambda": (lambda_.IAM_ACTIONS,),
        "edge": (apigw.IAM_ACTIONS,),
    },
}

# The state store declares no ``dynamodb:DeleteItem`` (records are write-once; leases are
# released by emptying their owner). Should a declaration ever add it, it is granted only
# in the lease partitions (``dynamodb:LeadingKeys``), never in a deployment's partition,
# where its history and audit records are.
DELETABLE_PARTITIONS: tuple[str, ...] = (table.lock_pk("*"),)


@dataclass(frozen=True, slots=True)
class ServiceKinds:
    """The project's services by kind (``ecs`` / ``lambda``); ``edge``: those (of either
    kind) with an ``api:`` block, served by an API Gateway REST API."""

    ecs: tuple[str, ...] = ()
    lambda_: tuple[str, ...] = ()
    edge: tuple[str, ...] = ()


def iam_actions_of_call(
    signing_name: str, operation: str, params: Mapping[str, Any] | None = None, *, http_method: str = ""
) -> frozenset[str]:
    """The IAM actions an API call needs (``elasticloadbalancing`` + ``ModifyRule`` -> ...);
    with the call's ``params``, a write transaction's by the kinds of its items. API
    Gateway's actions are the HTTP methods (``apigateway:GET``): pass ``http_method``."""
    if signing_name == "apigateway" and http_method:
        return frozenset({f"apigateway:{http_method.upper()}"})
    action = f"{_SIGNING_PREFIX.get(signing_name, signing_name)}:{operation}"
    if action == "dynamodb:TransactWriteItems" and params and params.get("TransactItems"):
        kinds = {kind for item in params["TransactItems"] for kind in item}
        return frozenset(_TRANSACT_ITEM_ACTIONS[k] for k in kinds if k in _TRANSACT_ITEM_ACTIONS)
    return IMPLIED_BY_OPERATION.get(action, frozenset({action}))


def actions(services: ServiceKinds, declared: Declarations | None = None) -> frozenset[str]:
    """The union of the actions ``declared`` (default: the deploy policy's) for ``always``
    and for the kinds the project has."""
    groups = DECLARED["deploy"] if declared is None else declared
    kinds = ["always"] + (["ecs"] if services.ecs else []) + (["lambda"] if services.lambda_ else [])
    kinds += ["edge"] if services.edge else []
    return frozenset(action for kind in kinds for group in groups.get(kind, ()) for action in group)


def policy(
    env: AwsEnvironment,
    services: ServiceKinds,
    declared: Declarations | None = None,
    *,
    kind: PolicyKind = "deploy",
) -> dict[str, Any]:
    """The ``kind`` policy document: one statement per (resources, condition), actions
    sorted. ``declared`` replaces the kind's declarations (tests)."""
    grouped: dict[Grant, set[str]] = {}
    for action in sorted(actions(services, DECLARED[kind] if declared is None else declared)):
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
        if grant.conditions:
            statement["Condition"] = _condition_block(grant.conditions)
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def policy_actions(document: Mapping[str, Any]) -> frozenset[str]:
    """Every action a policy document allows."""
    return frozenset(a for st in document["Statement"] for a in st["Action"])


Condition = tuple[str, str, tuple[str, ...]]  # (operator, key, values)


@dataclass(frozen=True, order=True, slots=True)
class Grant:
    """Where an action is allowed: ARNs, and the conditions that must hold."""

    resources: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()


def _condition_block(conditions: tuple[Condition, ...]) -> dict[str, dict[str, Any]]:
    block: dict[str, dict[str, Any]] = {}
    for operator, key, values in conditions:
        block.setdefault(operator, {})[key] = values[0] if len(values) == 1 else list(values)
    return block


def grants(action: str, env: AwsEnvironment, services: ServiceKinds) -> list[Grant]:
    """The grants ``action`` needs for ``env``'s services (``*`` when AWS cannot scope it)."""
    if action == "iam:PassRole":
        return _pass_role(env, services)
    prefix, _, name = action.partition(":")
    scope = _SCOPES.get(prefix)
    scoped = scope(name, _Arns(env), services) if scope else []
    if not scoped and services.lambda_:
        scoped = _lambda_resources(action, env, services)
    if not scoped and prefix in _NEVER_UNSCOPED_WRITES and not _reads(name):
        return []  # nothing of the project's to change: no grant rather than "*"
    conditions: tuple[Condition, ...] = ()
    if action == "dynamodb:DeleteItem":
        conditions = (("ForAllValues:StringLike", "dynamodb:LeadingKeys", DELETABLE_PARTITIONS),)
    return [Grant(tuple(scoped) if scoped else ("*",), conditions)]


# Services whose writes are always scoped to the project's resources, never "*": with
# nothing of the project's to scope to (ECR repositories in a project without ECS
# services), the write is not granted at all
_NEVER_UNSCOPED_WRITES = frozenset(
    {"elasticloadbalancing", "apigateway", "ecr", "lambda", "iam", "s3", "dynamodb", "sns"}
)


def _reads(name: str) -> bool:
    """Whether an action (the part after ``service:``) only reads."""
    return name == "GET" or name.startswith(("Describe", "Get", "List"))


def _pass_role(env: AwsEnvironment, services: ServiceKinds) -> list[Grant]:
    """The named roles only, each only towards the service that assumes it; no grant at
    all when there is no role to pass (never ``*``)."""
    found: list[Grant] = []
    if services.ecs:
        roles = tuple(dict.fromkeys(r for r in (env.execution_role(), env.task_role_arn) if r))
        found.append(Grant(roles, (("StringEquals", "iam:PassedToService", ("ecs-tasks.amazonaws.com",)),)))
    if services.lambda_:
        roles = tuple(_lambda_resources("iam:PassRole", env, services))
        found.append(Grant(roles, (("StringEquals", "iam:PassedToService", ("lambda.amazonaws.com",)),)))
    return [grant for grant in found if grant.resources]


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
    cluster, ecs_arn = arns.env.cluster, arns.of("ecs")
    if name in {"UpdateService", "DescribeServices", "CreateService"}:
        return [f"{ecs_arn}service/{cluster}/{s}-{slot.value}" for s in kinds.ecs for slot in Slot]
    if name == "DescribeTasks":
        return [f"{ecs_arn}task/{cluster}/*"]
    if name == "DescribeClusters":
        return [f"{ecs_arn}cluster/{cluster}"]
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


def _apigateway(name: str, arns: _Arns, kinds: ServiceKinds) -> list[str]:
    """The Lambda services' HTTP API and the edge's REST APIs (``pipeline.aws.apigw.permissions``)."""
    action, e = f"apigateway:{name}", arns.env
    found = _lambda_resources(action, e, kinds) if kinds.lambda_ and name in {"GET", "POST"} else []
    if kinds.edge:
        found += apigw.iam_resources(action, partition=e.partition, region=e.region)
    return found


def _logs(name: str, arns: _Arns, kinds: ServiceKinds) -> list[str]:
    """The tasks' log group: the environment's, else ``/pipeline/<env>/<service>`` (as
    ``pipeline.aws.ecs.taskdef.log_group``). ``DescribeLogGroups`` lists, so it stays ``*``."""
    if name.startswith("Describe"):
        return []
    group = f"{arns.of('logs')}log-group:{arns.env.log_group or f'/pipeline/{arns.env.name}/*'}"
    return [group, f"{group}:*"]


_SCOPES: dict[str, Callable[[str, _Arns, ServiceKinds], list[str]]] = {
    "dynamodb": _dynamodb,
    "ecs": _ecs,
    "elasticloadbalancing": _elb,
    "ecr": _ecr,
    "logs": _logs,
    "apigateway": _apigateway,
    "sns": lambda name, arns, kinds: [arns.env.notify_topic] if arns.env.notify_topic else [],
}


def _listeners(env: AwsEnvironment) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a for a in (env.listener_arn, env.test_listener_arn) if a))


def _rules_of(listener_arn: str) -> str:
    """``...:listener/app/x/y/z`` -> ``...:listener-rule/app/x/y/z/*``."""
    return listener_arn.replace(":listener/", ":listener-rule/", 1) + "/*"
