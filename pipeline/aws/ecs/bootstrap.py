"""``pipeline bootstrap``: create what an environment and its services need, idempotently.

Plan, then execute (the dry run prints the same plan the executor runs). Planning only
reads; each ``BootstrapStep`` says whether its resource exists and how to create it.
Resources the toolkit does not own (the cluster, the ALB listeners, the VPC) are checked,
never created: a missing one stops the run before anything is created.

For an ECS service: ECR repository (``pipeline.aws.ecr.registry``), the blue and green target
groups, the service's path rule on the listener and on the test listener (100% blue),
a first task definition revision (a placeholder image; no task ever runs it) and the two
slot services at desired count 0. For the environment: the DynamoDB state table.
Existing resources are left as they are (no drift correction); a second run creates nothing.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws.alb.router import service_routes
from pipeline.aws.alb.rules import AlbRoute, SlotTargetGroups, forward_action
from pipeline.aws.state.table import ensure_table, table_status
from pipeline.aws.ecs.taskdef import render
from pipeline.aws.errors import aws_errors, error_code, translate
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.core.errors import NotFoundError
from pipeline.core.model import Slot, Weights
from pipeline.core.ports import Clock

IAM_ACTIONS: frozenset[str] = frozenset(
    {
        "ecs:DescribeClusters",
        "ecs:CreateService",
        "ecs:DescribeTaskDefinition",
        "ecs:RegisterTaskDefinition",
        "iam:PassRole",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:CreateTargetGroup",
        "elasticloadbalancing:ModifyTargetGroupAttributes",
        "elasticloadbalancing:CreateRule",
        "ecr:DescribeRepositories",
    }
)
PLACEHOLDER_TAG = "bootstrap-placeholder"


@dataclass(frozen=True, slots=True)
class BootstrapStep:
    """One resource: ``exists`` now, and how to ``create`` it (None: not managed here)."""

    kind: str
    name: str
    exists: bool
    create: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    @property
    def action(self) -> str:
        if self.exists:
            return "exists"
        return "create" if self.create is not None else "missing"


def describe(steps: Sequence[BootstrapStep]) -> list[str]:
    """The plan, one line per resource, as ``--dry-run`` prints it."""
    width = max((len(st.kind) for st in steps), default=0)
    return [f"{st.action:<7} {st.kind:<{width}}  {st.name}" for st in steps]


def execute(steps: Sequence[BootstrapStep]) -> list[BootstrapStep]:
    """Create what is missing, in order; return the created steps. Refuses if any resource
    the toolkit does not manage is missing, before creating anything."""
    missing = [st for st in steps if st.action == "missing"]
    if missing:
        raise NotFoundError(
            "cannot bootstrap: " + "; ".join(f"{st.kind} {st.name} does not exist" for st in missing),
            hint="create it with your infrastructure code (or fix its name in pipeline.yaml), "
            "then run `pipeline bootstrap` again",
        )
    created: list[BootstrapStep] = []
    for step in steps:
        if step.action == "create" and step.create is not None:
            step.create()
            created.append(replace(step, exists=True))
    return created


def plan_environment(session: AwsSession, env: AwsEnvironment, clock: Clock) -> list[BootstrapStep]:
    """The environment's state table, and checks of its cluster and listeners."""
    table = env.state_table
    steps = [
        BootstrapStep(
            "DynamoDB table",
            table,
            bool(table_status(session, table)),
            lambda: _ignore(ensure_table(session, table, clock)),
        ),
        BootstrapStep("ECS cluster", env.cluster, _cluster_exists(session, env.cluster)),
    ]
    for listener in dict.fromkeys((env.listener_arn, env.test_listener_arn)):
        steps.append(BootstrapStep("ALB listener", listener, _listener_exists(session, listener)))
    return steps


def plan_ecs_service(session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec) -> list[BootstrapStep]:
    """Every resource an ECS service's blue/green deployments need."""
    steps = [_repository_step(session, env, spec)]
    elbv2, ecs = session.client("elbv2"), session.client("ecs")
    for slot in Slot:
        name = spec.target_group(slot)
        exists = _probe(
            f"describe target group {name}",
            {"TargetGroupNotFound"},
            partial(elbv2.describe_target_groups, Names=[name]),
        )
        steps.append(
            BootstrapStep(
                "target group", name, exists, partial(_create_target_group, session, env, spec, name)
            )
        )
    for route in service_routes(session, env, spec):
        where = f"{spec.route_path} on {_short(route.listener_arn)}"
        steps.append(
            BootstrapStep(
                "listener rule", where, route.find() is not None, partial(_create_rule, session, spec, route)
            )
        )
    family = spec.family
    exists = _probe(
        f"describe task definition {family}",
        {"ClientException"},
        lambda: ecs.describe_task_definition(taskDefinition=family),
    )
    steps.append(
        BootstrapStep("task definition", family, exists, partial(_register_placeholder, session, env, spec))
    )
    existing = _services(session, env.cluster, [spec.slot_service(s) for s in Slot])
    for slot in Slot:
        name = spec.slot_service(slot)
        create = partial(_create_service, session, env, spec, slot)
        steps.append(BootstrapStep("ECS service", f"{name} in {env.cluster}", name in existing, create))
    return steps


def adapt_steps(foreign: Iterable[Any]) -> list[BootstrapStep]:
    """Steps planned by another module (e.g. ``lambda_bootstrap.plan_lambda``): any objects
    with ``kind``, ``name``, ``exists`` and an optional ``create()``."""
    return [
        BootstrapStep(str(st.kind), str(st.name), bool(st.exists), getattr(st, "create", None))
        for st in foreign
    ]


# --- reads --------------------------------------------------------------------------------


def _ignore(_: object) -> None:
    return None


def _short(listener_arn: str) -> str:
    return listener_arn.rsplit("listener/", 1)[-1]


def _cluster_exists(session: AwsSession, cluster: str) -> bool:
    with aws_errors(f"describe ECS cluster {cluster}"):
        found = session.client("ecs").describe_clusters(clusters=[cluster])["clusters"]
    return any(c.get("status") == "ACTIVE" for c in found)


def _listener_exists(session: AwsSession, arn: str) -> bool:
    elbv2 = session.client("elbv2")
    return _probe(
        f"describe listener {arn}", {"ListenerNotFound"}, lambda: elbv2.describe_listeners(ListenerArns=[arn])
    )


def _probe(doing: str, missing: set[str], call: Callable[[], object]) -> bool:
    """Whether ``call`` finds its resource: False when AWS answers one of the ``missing`` codes."""
    try:
        call()
    except ClientError as exc:
        if error_code(exc) in missing:
            return False
        raise translate(exc, doing) from exc
    except BotoCoreError as exc:
        raise translate(exc, doing) from exc
    return True


def _services(session: AwsSession, cluster: str, names: list[str]) -> set[str]:
    """The ACTIVE services among ``names`` (none when the cluster itself is missing)."""
    try:
        with aws_errors(f"describe services {', '.join(names)} in {cluster}"):
            found = session.client("ecs").describe_services(cluster=cluster, services=names)["services"]
    except NotFoundError:
        return set()  # ClusterNotFoundException: the cluster step reports it
    return {s["serviceName"] for s in found if s.get("status") == "ACTIVE"}


def _repository_step(session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec) -> BootstrapStep:
    try:
        ecr_module = importlib.import_module("pipeline.aws.ecr.registry")  # another adapter: optional here
    except ModuleNotFoundError:
        return BootstrapStep("ECR repository", f"{spec.name} (pipeline.aws.ecr.registry is not installed)", False)
    ecr = session.client("ecr")
    exists = _probe(
        f"describe ECR repository {spec.name}",
        {"RepositoryNotFoundException"},
        lambda: ecr.describe_repositories(repositoryNames=[spec.name]),
    )
    registry = ecr_module.EcrRegistry(session.client("ecr"), registry=env.ecr_registry)
    return BootstrapStep(
        "ECR repository", spec.name, exists, lambda: _ignore(registry.ensure_repository(spec.name))
    )


# --- creates ------------------------------------------------------------------------------


def _create_target_group(session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec, name: str) -> None:
    hc = spec.health_check
    elbv2 = session.client("elbv2")
    with aws_errors(f"create target group {name}"):
        # CreateTargetGroup is idempotent for the same name and settings: retries are safe
        arn = elbv2.create_target_group(
            Name=name,
            Protocol="HTTP",
            Port=spec.port,
            VpcId=env.vpc_id,
            TargetType="ip",
            HealthCheckProtocol="HTTP",
            HealthCheckPath=hc.path,
            HealthCheckIntervalSeconds=int(hc.interval),
            HealthCheckTimeoutSeconds=int(hc.timeout),
            HealthyThresholdCount=hc.healthy_threshold,
            UnhealthyThresholdCount=hc.unhealthy_threshold,
            Matcher={"HttpCode": "200-399"},
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.modify_target_group_attributes(
            TargetGroupArn=arn,
            Attributes=[
                {"Key": "deregistration_delay.timeout_seconds", "Value": str(int(spec.deregistration_delay))}
            ],
        )


def _create_rule(session: AwsSession, spec: EcsServiceSpec, route: AlbRoute) -> None:
    arns = SlotTargetGroups(session, route.groups.names).arns()  # the groups may be new
    with aws_errors(f"create the listener rule for {spec.route_path} on {route.listener_arn}"):
        session.client("elbv2", retries=False).create_rule(
            ListenerArn=route.listener_arn,
            Priority=spec.route_priority,
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": [spec.route_path]}}],
            Actions=[forward_action(arns, Weights.all_to(Slot.BLUE))],
        )


def _register_placeholder(session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec) -> None:
    image = f"{env.ecr_registry or 'placeholder.invalid'}/{spec.name}:{PLACEHOLDER_TAG}"
    with aws_errors(f"register task definition {spec.family}"):
        session.client("ecs", retries=False).register_task_definition(**render(env, spec, image))


def _grace(spec: EcsServiceSpec) -> int:
    """Seconds ECS ignores failing target health checks after a task starts."""
    return int(spec.health_check.interval * spec.health_check.healthy_threshold)


def _create_service(session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec, slot: Slot) -> None:
    name = spec.slot_service(slot)
    target_group = SlotTargetGroups(session, (spec.target_group(Slot.BLUE), spec.target_group(Slot.GREEN)))
    with aws_errors(f"create ECS service {name} in {env.cluster}"):
        session.client("ecs").create_service(
            cluster=env.cluster,
            serviceName=name,
            taskDefinition=spec.family,
            desiredCount=0,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": list(env.subnets),
                    "securityGroups": list(env.security_groups),
                    "assignPublicIp": "ENABLED" if env.assign_public_ip else "DISABLED",
                }
            },
            loadBalancers=[
                {
                    "targetGroupArn": target_group.arns().of(slot),
                    "containerName": spec.container,
                    "containerPort": spec.port,
                }
            ],
            healthCheckGracePeriodSeconds=_grace(spec),
            deploymentConfiguration={
                "maximumPercent": 200,
                "minimumHealthyPercent": 100,
                "deploymentCircuitBreaker": {"enable": True, "rollback": False},
            },
            clientToken=uuid.uuid4().hex,  # idempotent: botocore's retries cannot create twice
        )
