"""``AwsFactory``: the ``PlatformFactory`` of environments with ``platform: aws``.

- ``stores(env)``: ``DynamoStateStore`` + ``DynamoLockManager`` on the environment's table;
- ``platform(env, service)``: for ``kind: ecs``, ``EcsCompute`` + ``AlbListenerRouter`` +
  ``CloudWatchMetrics`` + the load-test package's stage runner (HTTP smoke checks when it
  is not installed); for ``kind: lambda``, ``pipeline.aws.lambda_.platform.lambda_platform``;
- ``registry(env)``: ``pipeline.aws.ecr.EcrRegistry`` on the environment's registry.

One ``AwsSession`` per environment (assumed role, retries, client cache), made on first use.
The Lambda and ECR adapters are separate modules; when one is missing the factory raises
a ``PlatformError`` saying so instead of failing at import time.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING

from pipeline.aws.alb.router import AlbListenerRouter, service_routes
from pipeline.aws.bootstrap import BootstrapStep, adapt_steps, plan_ecs_service, plan_environment
from pipeline.aws.alb.metrics import CloudWatchMetrics
from pipeline.aws.config_glue import aws_environment, ecs_spec
from pipeline.aws.state.lock import DynamoLockManager
from pipeline.aws.state.store import DynamoStateStore
from pipeline.aws.ecs.compute import EcsCompute
from pipeline.aws.session import DEFAULT_MAX_ATTEMPTS, AwsSession, SessionSettings
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.core.errors import PlatformError
from pipeline.core.ports import Clock, ImageRegistry, LockManager, Platform, StageRunner, StateStore
from pipeline.loadtest.synthetic import service_traffic
from pipeline.owners import actor as current_actor

if TYPE_CHECKING:
    from pipeline.config import EnvironmentConfig, Project, ServiceConfig


def ecs_platform(
    session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec, clock: Clock, stages: StageRunner
) -> Platform:
    """The ports of one ECS service in one environment (the routes share one lookup)."""
    live, test = service_routes(session, env, spec)
    return Platform(
        # The engine holds for the deregistration delay (Strategy.drain_seconds, renewing its
        # lease) before it scales a slot down, so the adapter does not wait again.
        compute=EcsCompute(
            session, env, spec, groups=live.groups, test_route=test, clock=clock, drain_wait=False
        ),
        router=AlbListenerRouter(live),
        metrics=CloudWatchMetrics(
            session,
            load_balancer=env.load_balancer_dimension,
            groups=live.groups,
            alarm_names=spec.alarm_names,
            min_requests=spec.min_requests,
        ),
        stages=stages,
    )


class AwsFactory:
    """Adapters for AWS environments of ``project``; see the module docstring."""

    def __init__(self, project: Project, clock: Clock, *, actor: str = "", max_attempts: int = 0) -> None:
        self.project = project
        self.clock = clock
        self.actor = actor or current_actor()
        self.max_attempts = max_attempts or DEFAULT_MAX_ATTEMPTS
        self._sessions: dict[str, AwsSession] = {}

    def environment(self, env: EnvironmentConfig) -> AwsEnvironment:
        return aws_environment(self.project, env)

    def session(self, env: EnvironmentConfig) -> AwsSession:
        """The environment's session, made once."""
        settings = self.environment(env)
        if settings.name not in self._sessions:
            self._sessions[settings.name] = AwsSession(
                SessionSettings(
                    region=settings.region,
                    role_arn=settings.role_arn,
                    actor=self.actor,
                    max_attempts=self.max_attempts,
                    endpoint_url=settings.endpoint_url,
                )
            )
        return self._sessions[settings.name]

    def stores(self, env: EnvironmentConfig) -> tuple[StateStore, LockManager]:
        session, table = self.session(env), self.environment(env).state_table
        return DynamoStateStore(session, table), DynamoLockManager(session, table, self.clock)

    def platform(self, env: EnvironmentConfig, service: ServiceConfig) -> Platform:
        """The service's ports; synthetic traffic goes to ``aws.url`` when it is set."""
        session, settings = self.session(env), self.environment(env)
        traffic = service_traffic(env.aws.url, service) if env.aws is not None and env.aws.url else None
        if service.kind == "lambda":
            module = _adapter("pipeline.aws.lambda_.platform", "Lambda services")
            platform: Platform = module.lambda_platform(
                session, settings, service, self.clock, root=self.project.root, env_name=settings.name
            )
            return replace(platform, traffic=traffic)
        stages = self._stages(settings, service)
        alarms = tuple(service.ecs.alarms) if service.ecs is not None else ()
        platform = ecs_platform(session, settings, ecs_spec(service, alarm_names=alarms), self.clock, stages)
        return replace(platform, traffic=traffic)

    def registry(self, env: EnvironmentConfig) -> ImageRegistry:
        module = _adapter("pipeline.aws.ecr.registry", "ECR images")
        settings = self.environment(env)
        build = importlib.import_module("pipeline.build")
        root = self.project.root
        registry: ImageRegistry = module.EcrRegistry(
            self.session(env).client("ecr"),
            registry=settings.ecr_registry,
            head=lambda: build.source_revision(root)[0],
        )
        return registry

    def bootstrap_plan(self, env: EnvironmentConfig, services: list[ServiceConfig]) -> list[BootstrapStep]:
        """What ``pipeline bootstrap`` would create for ``env`` and ``services`` (reads only)."""
        session, settings = self.session(env), self.environment(env)
        steps = plan_environment(session, settings, self.clock)
        for service in services:
            if service.kind == "lambda":
                module = _adapter("pipeline.aws.lambda_.bootstrap", "Lambda services")
                planned = module.plan_lambda(
                    session, settings, service, env_name=settings.name, clock=self.clock
                )
                steps += adapt_steps(planned)
            else:
                steps += plan_ecs_service(session, settings, ecs_spec(service))
        return steps

    def _stages(self, env: AwsEnvironment, service: ServiceConfig) -> StageRunner:
        """The load-test package's stages when installed, else HTTP smoke checks."""
        try:
            module = importlib.import_module("pipeline.loadtest.stages")
        except ModuleNotFoundError:
            smoke = importlib.import_module("pipeline.local.stages")
            path = service.ecs.health_check.path if service.ecs else "/health"
            fallback: StageRunner = smoke.HttpSmokeStages(path)
            return fallback
        runner: StageRunner = module.ServiceStageRunner.from_config(self.project, service, env.name)
        return runner


def _adapter(name: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise PlatformError(
            f"cannot deploy {what} on AWS: the adapter module {name} is not installed",
            hint="install the complete toolkit (`pip install -e .`), "
            "or deploy this service to a local environment",
        ) from exc
