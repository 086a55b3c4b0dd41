"""Plain values the AWS adapters are built from, and the names they give AWS resources.

The adapters never read configuration files: ``aws_environment`` and ``ecs_spec`` (at the
end) turn the typed ``pipeline.config`` models into these values, and tests build them
directly. Durations are seconds.

Naming (one place, so bootstrap, the adapters and the IAM policy agree):

- slot services ``<svc>-blue`` / ``<svc>-green`` in the environment's cluster;
- target groups with the same names (at most 32 characters: longer service names are
  shortened with a hash so the two slots never collide);
- one task definition family per service, ``<svc>``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.core.errors import ConfigError
from pipeline.core.model import Slot

if TYPE_CHECKING:
    from pipeline.config import EnvironmentConfig, Project, ServiceConfig

TARGET_GROUP_MAX = 32


def partition_of(region: str) -> str:
    """The ARN partition of ``region`` (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True, slots=True)
class AwsEnvironment:
    """Where an environment's deployments go (the ``aws:`` block of an environment)."""

    name: str
    region: str
    account: str
    cluster: str
    listener_arn: str
    test_listener_arn: str
    state_table: str
    role_arn: str = ""
    vpc_id: str = ""
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    ecr_registry: str = ""
    assign_public_ip: bool = False
    execution_role_arn: str = ""
    task_role_arn: str = ""
    lambda_role_arn: str = ""
    log_group: str = ""
    log_retention_days: int = 30  # of the log group bootstrap creates
    test_url: str = ""
    endpoint_url: str = ""
    percentile_fallback: bool = False  # test endpoint only: Maximum when p95 is refused
    notify_topic: str = ""  # notify.sns: the deploy role may publish deployment notices there
    otlp_endpoint: str = ""  # observability.otlp: ECS tasks get an ADOT collector sidecar exporting there

    @property
    def partition(self) -> str:
        return partition_of(self.region)

    @property
    def load_balancer_dimension(self) -> str:
        """``app/<name>/<id>``: the ALB's CloudWatch dimension, read from the listener ARN."""
        return load_balancer_of(self.listener_arn)

    def execution_role(self) -> str:
        """The ECS task execution role (pulls the image, reads secrets, writes logs)."""
        return self.execution_role_arn or (
            f"arn:{self.partition}:iam::{self.account}:role/ecsTaskExecutionRole"
        )


@dataclass(frozen=True, slots=True)
class HealthCheckSpec:
    """Target-group and container health check. Seconds; thresholds are counts."""

    path: str = "/health"
    interval: float = 10.0
    timeout: float = 5.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    start_period: float = 30.0  # container check: failures before this do not count
    container: bool = True  # False: no container health check (images without curl/wget)


@dataclass(frozen=True, slots=True)
class EcsServiceSpec:
    """What an ECS service's slots run and how they are reached (the ``ecs:`` block)."""

    name: str
    container: str
    port: int
    route_path: str
    route_priority: int
    cpu: int = 256
    memory: int = 512
    desired_count: int = 1
    environment: tuple[tuple[str, str], ...] = ()
    secrets: tuple[tuple[str, str], ...] = ()  # (variable, SSM parameter or secret ARN)
    health_check: HealthCheckSpec = HealthCheckSpec()
    deregistration_delay: float = 30.0
    grace_period: float = 60.0  # ECS ignores failing target health this long after a task starts
    alarm_names: tuple[str, ...] = ()
    min_requests: int = 20  # analysis floor; an alarm in ALARM reports at least this many
    count_unhealthy_hosts: bool = False  # UnHealthyHostCount > 0 fails the analysis

    def slot_service(self, slot: Slot) -> str:
        return slot_service_name(self.name, slot)

    def target_group(self, slot: Slot) -> str:
        return target_group_name(self.name, slot)

    @property
    def family(self) -> str:
        return self.name


def slot_service_name(service: str, slot: Slot) -> str:
    return f"{service}-{slot.value}"


def target_group_name(service: str, slot: Slot) -> str:
    """``<svc>-<slot>``, shortened with a stable hash to fit ALB's 32-character limit."""
    name = f"{service}-{slot.value}"
    if len(name) <= TARGET_GROUP_MAX:
        return name
    digest = hashlib.sha256(service.encode()).hexdigest()[:6]
    keep = TARGET_GROUP_MAX - len(slot.value) - len(digest) - 2
    return f"{service[:keep].rstrip('-')}-{digest}-{slot.value}"


def load_balancer_of(listener_arn: str) -> str:
    """``app/<name>/<id>`` from ``arn:...:listener/app/<name>/<id>/<listener-id>``."""
    _, _, path = listener_arn.partition(":listener/")
    parts = path.split("/")
    return "/".join(parts[:3]) if len(parts) >= 3 else ""


def target_group_dimension(target_group_arn: str) -> str:
    """``targetgroup/<name>/<id>``: a target group's CloudWatch dimension, from its ARN."""
    _, _, suffix = target_group_arn.partition(":targetgroup/")
    return f"targetgroup/{suffix}"


def path_prefix(path_pattern: str) -> str:
    """The literal start of an ALB path pattern: ``/orders/*`` -> ``/orders``."""
    literal = path_pattern.split("*", 1)[0].split("?", 1)[0]
    return literal.rstrip("/")


# --- from the typed configuration ---------------------------------------------------------


def environment_name(project: Project, env: EnvironmentConfig) -> str:
    """The name ``env`` has in ``pipeline.yaml`` (environment models do not carry it)."""
    for name, candidate in project.config.environments.items():
        if candidate is env or candidate == env:
            return name
    raise ConfigError(["an environment passed to the AWS platform is not in pipeline.yaml"])


def aws_environment(project: Project, env: EnvironmentConfig) -> AwsEnvironment:
    """The AWS settings of ``env``; ConfigError when it is not an AWS environment."""
    name = environment_name(project, env)
    aws = env.aws
    if aws is None:
        raise ConfigError(
            [f"pipeline.yaml: environments.{name}: platform aws needs an `aws:` block"],
            hint="add region, account, cluster, listener ARNs and the state table",
        )
    return AwsEnvironment(
        name=name,
        region=aws.region,
        # Empty only in `access: read` environments, which only read history.
        account=aws.account or "",
        cluster=aws.cluster or "",
        listener_arn=aws.listener_arn or "",
        test_listener_arn=aws.test_listener_arn or "",
        state_table=aws.state_table,
        role_arn=aws.role_arn or "",
        vpc_id=aws.vpc_id or "",
        subnets=tuple(aws.subnets or ()),
        security_groups=tuple(aws.security_groups or ()),
        ecr_registry=aws.ecr_registry or "",
        assign_public_ip=aws.assign_public_ip,
        execution_role_arn=aws.execution_role_arn or "",
        task_role_arn=aws.task_role_arn or "",
        lambda_role_arn=aws.lambda_role_arn or "",
        log_group=aws.log_group or f"/pipeline/{project.config.project}",
        log_retention_days=aws.log_retention_days,
        test_url=aws.test_url or "",
        endpoint_url=aws.endpoint_url or "",
        percentile_fallback=aws.percentile_fallback,
        notify_topic=env.notify.sns or "" if env.notify is not None else "",
        otlp_endpoint=env.observability.otlp or "",
    )


def ecs_spec(service: ServiceConfig, *, alarm_names: tuple[str, ...] = ()) -> EcsServiceSpec:
    """The ECS settings of ``service``; ConfigError when it has no ``ecs:`` block."""
    ecs = service.ecs
    if ecs is None:
        raise ConfigError([f"services/{service.name}/service.yaml: kind ecs needs an `ecs:` block"])
    hc = ecs.health_check
    where = f"services/{service.name}/service.yaml: ecs.health_check"
    problems = [
        f"{where}.{key}: {value:g}s is outside the ALB's range {low}s-{high}s"
        for key, value, low, high in (("interval", hc.interval, 5, 300), ("timeout", hc.timeout, 2, 120))
        if not low <= value <= high
    ]
    if problems:
        raise ConfigError(problems)  # fine on the local platform, refused by ELB's ModifyTargetGroup
    return EcsServiceSpec(
        name=service.name,
        container=ecs.container,
        port=ecs.port,
        route_path=ecs.route.path,
        route_priority=ecs.route.priority,
        cpu=ecs.cpu,
        memory=ecs.memory,
        desired_count=ecs.desired_count,
        environment=tuple((k, str(v)) for k, v in ecs.environment.items()),
        secrets=tuple(ecs.secrets.items()),
        health_check=HealthCheckSpec(
            path=hc.path,
            interval=hc.interval,
            timeout=hc.timeout,
            healthy_threshold=hc.healthy_threshold,
            unhealthy_threshold=hc.unhealthy_threshold,
            start_period=hc.start_period,
            container=hc.container,
        ),
        deregistration_delay=ecs.deregistration_delay,
        grace_period=ecs.health_check_grace_period,
        alarm_names=alarm_names,
        min_requests=service.deploy.analysis.min_requests,
        count_unhealthy_hosts=ecs.count_unhealthy_hosts,
    )
