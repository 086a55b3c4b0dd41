"""``AwsFactory``: the ``PlatformFactory`` of environments with ``platform: aws``.

- ``stores(env)``: ``DynamoStateStore`` + ``DynamoLockManager`` on the environment's table;
- ``platform(env, service)``: for ``kind: ecs``, ``EcsCompute`` + ``AlbListenerRouter`` +
  ``CloudWatchMetrics`` + the service's load-test stages; for ``kind: lambda``,
  ``pipeline.aws.lambda_.platform.lambda_platform``;
- ``registry(env)``: ``pipeline.aws.ecr.registry.EcrRegistry`` on the environment's registry;
- ``strategy(env, service, strategy)``: the AWS platform's rules for a service's strategy
  (ECS slots scale down once the ALB weights settled; ECS drains their targets itself),
  and the refusal of a strategy that may outlast the environment's credentials;
- ``resumable(env, state, command)``: the same refusal for what is left of a stored
  deployment that ``pipeline deploy --resume`` or ``pipeline continue`` would run here;
- ``bootstrap_plan(env, services)``: the ``BootstrapStep`` list ``pipeline bootstrap`` runs
  (a service's ``api:`` edge included: ``pipeline.aws.apigw.bootstrap``);
- ``api_keys(env)``: ``pipeline keys`` on the REST APIs' keys (``pipeline.aws.apigw.keys``).

A service with an ``api:`` cache that ``invalidate_on_deploy`` gets its router wrapped in
``CacheFlushingRouter``: a change of the split flushes its REST API's stage cache.

One ``AwsSession`` per environment (assumed role, retries, client cache), made on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from pipeline.aws.alb.metrics import CloudWatchMetrics
from pipeline.aws.alb.router import WEIGHT_SETTLE_SECONDS, AlbListenerRouter, service_routes
from pipeline.aws.apigw.bootstrap import plan_edge
from pipeline.aws.apigw.cache import CacheFlushingRouter, StageCache
from pipeline.aws.apigw.keys import ApiGatewayKeys
from pipeline.aws.apigw.spec import EdgeSpec, edge_spec
from pipeline.aws.bootstrap import BootstrapStep, plan_environment
from pipeline.aws.credentials import check_fits, check_rest_fits
from pipeline.aws.ecr.registry import EcrRegistry
from pipeline.aws.ecs.bootstrap import plan_ecs_service
from pipeline.aws.ecs.compute import EcsCompute
from pipeline.aws.lambda_.bootstrap import plan_lambda
from pipeline.aws.lambda_.platform import lambda_platform
from pipeline.aws.lambda_.warmup import chain_hops
from pipeline.aws.session import DEFAULT_MAX_ATTEMPTS, AwsSession, SessionSettings
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec, aws_environment, ecs_spec
from pipeline.aws.state.lock import DynamoLockManager
from pipeline.aws.state.store import DynamoStateStore
from pipeline.build import source_revision
from pipeline.core.edge import IssuedKey
from pipeline.core.errors import UsageError
from pipeline.core.plan import Strategy
from pipeline.core.ports import Clock, ImageRegistry, LockManager, Platform, StageRunner, StateStore
from pipeline.core.state import DeploymentState
from pipeline.loadtest.stages import ServiceStageRunner
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
        # Scaling a slot down lets ECS drain its targets for the deregistration delay; the
        # engine only holds for the ALB's weight settle before it (see AwsFactory.strategy).
        compute=EcsCompute(session, env, spec, groups=live.groups, test_route=test, clock=clock),
        router=AlbListenerRouter(live),
        metrics=CloudWatchMetrics(
            session,
            load_balancer=env.load_balancer_dimension,
            groups=live.groups,
            clock=clock,
            alarm_names=spec.alarm_names,
            min_requests=spec.min_requests,
            count_unhealthy_hosts=spec.count_unhealthy_hosts,
            percentile_fallback=env.percentile_fallback,
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
            url = env.aws.url if env.aws is not None else None
            chain = chain_hops(self.project.services, service.name, settings.name, url or None)
            platform = lambda_platform(session, settings, service, self.clock, root=self.project.root,
                                       chain=chain)
        else:
            stages = ServiceStageRunner.from_config(self.project, service, settings.name)
            alarms = tuple(service.ecs.alarms) if service.ecs is not None else ()
            spec = ecs_spec(service, alarm_names=alarms)
            platform = ecs_platform(session, settings, spec, self.clock, stages)
        edge = edge_spec(settings, service)
        if edge is not None and edge.api.cache is not None and edge.api.cache.invalidate_on_deploy:
            cache = StageCache(session.client("apigateway"), edge)
            platform = replace(platform, router=CacheFlushingRouter(platform.router, cache))
        return replace(platform, traffic=traffic)

    def strategy(self, env: EnvironmentConfig, service: ServiceConfig, strategy: Strategy) -> Strategy:
        """``strategy`` under the AWS platform's rules: after traffic left an ECS slot, the
        engine holds ``WEIGHT_SETTLE_SECONDS`` (the ALB nodes apply the verified weights)
        before it scales the slot down; ECS then drains the slot's targets for the
        deregistration delay itself (Lambda: unchanged).

        UsageError, before anything changes, when the environment's credentials expire
        before a deployment of the strategy may end (``pipeline.aws.credentials``).
        """
        if service.ecs is not None:
            strategy = replace(strategy, drain_seconds=WEIGHT_SETTLE_SECONDS)
        session = self.session(env)
        check_fits(session.lifetime(), strategy, session.utc_now(), environment=self.environment(env).name)
        return strategy

    def resumable(self, env: EnvironmentConfig, state: DeploymentState, command: str) -> None:
        """UsageError, before anything changes, when the environment's credentials expire
        before the rest of ``state``'s stored plan may end (``check_rest_fits``)."""
        session = self.session(env)
        check_rest_fits(session.lifetime(), state, session.utc_now(), self.clock.now(), command=command)

    def registry(self, env: EnvironmentConfig) -> ImageRegistry:
        settings, root = self.environment(env), self.project.root
        return EcrRegistry(
            self.session(env).client("ecr"),
            registry=settings.ecr_registry,
            head=lambda: source_revision(root)[0],
        )

    def bootstrap_plan(
        self,
        env: EnvironmentConfig,
        services: list[ServiceConfig],
        reveal: Callable[[str, IssuedKey], None] | None = None,
    ) -> list[BootstrapStep]:
        """What ``pipeline bootstrap`` would create for ``env`` and ``services`` (reads only);
        ``reveal(service, issued)`` takes the secret of each declared API key it creates."""
        session, settings = self.session(env), self.environment(env)
        steps = plan_environment(session, settings, self.clock)
        for service in services:
            if service.kind == "lambda":
                steps += plan_lambda(session, settings, service, clock=self.clock)
            else:
                steps += plan_ecs_service(session, settings, ecs_spec(service))
            edge = edge_spec(settings, service)
            if edge is not None:
                shown = None if reveal is None else partial(reveal, service.name)
                steps += plan_edge(session, edge, self.clock, shown)
        return steps

    def api_keys(self, env: EnvironmentConfig) -> ApiGatewayKeys:
        """The API keys of ``env``'s services' REST APIs (``pipeline keys``)."""
        settings = self.environment(env)

        def spec_of(name: str) -> EdgeSpec:
            found = edge_spec(settings, self.project.service(name))
            if found is None:
                raise UsageError(
                    f"{name} has no api: block, so it has no API keys",
                    hint="add an api: block to its service.yaml (docs/api-edge.md), then bootstrap",
                )
            return found

        return ApiGatewayKeys(self.session(env), spec_of)
