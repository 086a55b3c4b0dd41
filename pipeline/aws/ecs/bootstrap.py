"""Bootstrap of an ECS service: what its blue/green deployments need before the first one.

``plan_ecs_service`` only reads and returns ``pipeline.aws.bootstrap.BootstrapStep``
values (run by ``pipeline.aws.bootstrap.execute``): the ECR repository, the CloudWatch log
group the tasks write to (with the environment's retention: task definitions do not ask
ECS to create it, which would need ``logs:CreateLogGroup`` on the execution role), the blue
and green target groups, the service's path rule on the listener and on the test listener
(100% blue), a first task definition revision (a placeholder image; no task ever runs it)
and the two slot services at desired count 0, with the service's health-check grace period.
"""

from __future__ import annotations

import uuid
from functools import partial

from botocore.exceptions import ClientError

from pipeline.aws.alb.router import service_routes
from pipeline.aws.alb.rules import AlbRoute, SlotTargetGroups, forward_action
from pipeline.aws.bootstrap import BootstrapStep, probe
from pipeline.aws.ecr.registry import EcrRegistry
from pipeline.aws.ecs.taskdef import log_group, render
from pipeline.aws.errors import aws_errors, error_code
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.core.errors import NotFoundError
from pipeline.core.model import Slot, Weights

__all__ = ["IAM_ACTIONS", "PLACEHOLDER_TAG", "plan_ecs_service"]

IAM_ACTIONS: frozenset[str] = frozenset(
    {
        "ecs:CreateService",
        "ecs:DescribeTaskDefinition",
        "ecs:RegisterTaskDefinition",
        "iam:PassRole",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:CreateTargetGroup",
        "elasticloadbalancing:ModifyTargetGroupAttributes",
        "elasticloadbalancing:CreateRule",
        "ecr:DescribeRepositories",
        "logs:DescribeLogGroups",
        "logs:CreateLogGroup",
        "logs:PutRetentionPolicy",
    }
)
PLACEHOLDER_TAG = "bootstrap-placeholder"


def plan_ecs_service(session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec) -> list[BootstrapStep]:
    """Every resource an ECS service's blue/green deployments need."""
    steps = [_repository_step(session, env, spec), _log_group_step(session, env, spec)]
    elbv2, ecs = session.client("elbv2"), session.client("ecs")
    for slot in Slot:
        name = spec.target_group(slot)
        exists = probe(
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
    exists = probe(
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


# --- reads --------------------------------------------------------------------------------


def _ignore(_: object) -> None:
    return None


def _short(listener_arn: str) -> str:
    return listener_arn.rsplit("listener/", 1)[-1]


def _services(session: AwsSession, cluster: str, names: list[str]) -> set[str]:
    """The ACTIVE services among ``names`` (none when the cluster itself is missing)."""
    try:
        with aws_errors(f"describe services {', '.join(names)} in {cluster}"):
            found = session.client("ecs").describe_services(cluster=cluster, services=names)["services"]
    except NotFoundError:
        return set()  # ClusterNotFoundException: the cluster step reports it
    return {s["serviceName"] for s in found if s.get("status") == "ACTIVE"}


def _repository_step(session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec) -> BootstrapStep:
    ecr = session.client("ecr")
    exists = probe(
        f"describe ECR repository {spec.name}",
        {"RepositoryNotFoundException"},
        lambda: ecr.describe_repositories(repositoryNames=[spec.name]),
    )
    registry = EcrRegistry(ecr, registry=env.ecr_registry)
    return BootstrapStep(
        "ECR repository", spec.name, exists, lambda: _ignore(registry.ensure_repository(spec.name))
    )


def _log_group_step(session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec) -> BootstrapStep:
    name = log_group(env, spec)
    with aws_errors(f"describe log group {name}"):
        found = session.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    exists = any(g.get("logGroupName") == name for g in found)
    create = partial(_create_log_group, session, name, env.log_retention_days)
    detail = f"retention {env.log_retention_days} days"
    return BootstrapStep("log group", name, exists, create, detail=detail)


# --- creates ------------------------------------------------------------------------------


def _create_log_group(session: AwsSession, name: str, days: int) -> None:
    """Create the log group (another service's bootstrap may just have), then set its retention."""
    logs = session.client("logs")
    with aws_errors(f"create log group {name}"):
        try:
            logs.create_log_group(logGroupName=name)
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
        logs.put_retention_policy(logGroupName=name, retentionInDays=days)


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
            healthCheckGracePeriodSeconds=int(spec.grace_period),
            deploymentConfiguration={
                "maximumPercent": 200,
                "minimumHealthyPercent": 100,
                "deploymentCircuitBreaker": {"enable": True, "rollback": False},
            },
            clientToken=uuid.uuid4().hex,  # idempotent: botocore's retries cannot create twice
        )
