"""The one place that reads the loaded configuration for the AWS adapters.

``aws_environment`` and ``ecs_spec`` turn ``pipeline.config`` models into the plain
values of ``pipeline.aws.settings``; nothing else in ``pipeline.aws`` reads config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec, HealthCheckSpec
from pipeline.core.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.config import EnvironmentConfig, Project, ServiceConfig


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
        test_url=aws.test_url or "",
        endpoint_url=aws.endpoint_url or "",
    )


def ecs_spec(service: ServiceConfig, *, alarm_names: tuple[str, ...] = ()) -> EcsServiceSpec:
    """The ECS settings of ``service``; ConfigError when it has no ``ecs:`` block."""
    ecs = service.ecs
    if ecs is None:
        raise ConfigError([f"services/{service.name}/service.yaml: kind ecs needs an `ecs:` block"])
    hc = ecs.health_check
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
        ),
        deregistration_delay=ecs.deregistration_delay,
        alarm_names=alarm_names,
        min_requests=service.deploy.analysis.min_requests,
    )
