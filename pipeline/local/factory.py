"""``LocalFactory``: the adapters of the local platform for the CLI's composition root.

One plane per project (``<root>/.pipeline``) serves every local environment; ``platform()``
starts it when it is not running, so ``pipeline deploy`` needs no prior ``local up``.
State lives in ``<root>/<env.local.state_dir>/state.db``. With ``$PIPELINE_LOCAL_HOME`` set,
plane, registry and state all live in that folder instead (``state_dir_of``).

The config-reading glue is ``local_launch`` and ``service_binding``; the adapters
themselves take plain values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config.calls import warm_order
from pipeline.core.errors import ConfigError, NotFoundError
from pipeline.core.model import Release
from pipeline.core.ports import Clock, Platform, StageRunner, TrafficDriver
from pipeline.local.adapters import (
    LocalCompute,
    LocalMetrics,
    LocalRouter,
    PlaneService,
    ServiceBinding,
)
from pipeline.local.api_keys import EdgeCountingMetrics, LocalApiKeys, keyed, register_edge
from pipeline.local.http.rules import lambda_function_name
from pipeline.local.lambda_.coldstarts import RuntimeColdStarts
from pipeline.local.lambda_.control_client import LambdaControlClient
from pipeline.local.plane.control_client import PlaneClient
from pipeline.local.plane.lifecycle import state_dir_of
from pipeline.local.private_files import private_dir, private_file
from pipeline.local.registry import LocalRegistry
from pipeline.local.service_launch import SERVICES_DIR, launch_of
from pipeline.local.specs import Launch, RouteSpec
from pipeline.local.stages import HttpSmokeStages
from pipeline.local.state.sqlite_lock import SqliteLockManager
from pipeline.local.state.sqlite_store import SqliteStateStore, open_sqlite
from pipeline.local.traces import LocalTraces

if TYPE_CHECKING:
    from pipeline.config import EnvironmentConfig, LocalPlatformConfig, Project, ServiceConfig


class LocalFactory:
    """``PlatformFactory`` for environments with ``platform: local``."""

    def __init__(self, project: Project, clock: Clock) -> None:
        self.project = project
        self.clock = clock
        self.state_dir = state_dir_of(project.root)
        self._stores: dict[Path, tuple[SqliteStateStore, SqliteLockManager]] = {}
        self._client: PlaneClient | None = None

    def stores(self, env: EnvironmentConfig) -> tuple[SqliteStateStore, SqliteLockManager]:
        """The SQLite store and lock manager of ``<state_dir_of(root, state_dir)>/state.db`` (per file)."""
        path = state_dir_of(self.project.root, _local(env, self.project).state_dir) / "state.db"
        if path not in self._stores:
            if path.parent == self.state_dir:
                private_dir(path.parent)
            else:  # a folder of the user's choosing (local.state_dir): created private, never changed
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            private_file(path)
            self._stores[path] = open_sqlite(path, self.clock)
        return self._stores[path]

    def registry(self, env: EnvironmentConfig) -> LocalRegistry:
        return LocalRegistry(Path(self.project.root), self.state_dir)

    def plane(self) -> PlaneClient:
        """The client of the project's plane (started on first use)."""
        if self._client is None:
            self._client = PlaneClient.for_state_dir(self.state_dir)
        return self._client

    def platform(self, env: EnvironmentConfig, service: ServiceConfig) -> Platform:
        """Compute, router, metrics and stages of ``service`` in ``env``; starts the plane."""
        binding = service_binding(self.project, env, service)
        client = self.plane()
        client.base_url  # noqa: B018 - start (or find) the plane now, not mid-deployment
        if service.kind == "lambda":
            PlaneService(client, binding).register()
            synthetic = register_edge(client, binding.environment, service)
            stages = self._stages(binding, service)
            chain = _lambda_chain(self.project, binding.environment, service)
            platform = _lambda_platform(client, self.registry(env), binding, service, stages, chain)
            traffic = _lambda_traffic(client, binding, service, synthetic)
            return self._edged(env, service, replace(platform, traffic=traffic, traces=self._traces(binding)))
        synthetic = register_edge(client, binding.environment, service)
        compute = LocalCompute(client, binding, local_launch(self.project, service),
                               self.registry(env).snapshot_dir)
        return self._edged(env, service, Platform(
            compute=compute, router=LocalRouter(client, binding), metrics=LocalMetrics(client, binding),
            stages=self._stages(binding, service), traffic=_traffic(binding, service, synthetic),
            traces=self._traces(binding)))

    def _traces(self, binding: ServiceBinding) -> LocalTraces:
        """The service's traces in the plane's span store (per-hop checks, load-stage hops)."""
        return LocalTraces(self.state_dir, binding.environment, binding.service)

    def _edged(self, env: EnvironmentConfig, service: ServiceConfig, platform: Platform) -> Platform:
        """``platform`` whose metrics also carry the edge's counts when the service has an ``api:``."""
        if service.api is None:
            return platform
        counted = EdgeCountingMetrics(platform.metrics, self.api_keys(env), service.name)
        return replace(platform, metrics=counted)

    def api_keys(self, env: EnvironmentConfig) -> LocalApiKeys:
        """Key management of ``env``'s services on the plane (started on first use)."""
        return LocalApiKeys(self.plane(), environment_name(self.project, env), self.project.service)

    def _stages(self, binding: ServiceBinding, service: ServiceConfig) -> StageRunner:
        """The load-test package's stage runner when installed, else HTTP smoke checks."""
        try:
            from pipeline.loadtest.stages import ServiceStageRunner  # noqa: PLC0415
        except ImportError:
            return _smoke_stages(service)
        return ServiceStageRunner.from_config(self.project, service, binding.environment,
                                              traces=self._traces(binding),
                                              cold_starts=chain_cold_starts(self.project, binding.environment,
                                                                            service.name, self.plane))


# --- config glue -----------------------------------------------------------------------


def environment_name(project: Project, env: EnvironmentConfig) -> str:
    """The name ``env`` has in ``pipeline.yaml`` (the config model does not carry it)."""
    environments = project.config.environments
    for name, candidate in environments.items():
        if candidate is env:
            return name
    for name, candidate in environments.items():
        if candidate == env:
            return name
    raise NotFoundError("this environment is not defined in pipeline.yaml",
                        hint=f"known environments: {', '.join(sorted(environments))}")


def service_binding(project: Project, env: EnvironmentConfig, service: ServiceConfig) -> ServiceBinding:
    name = environment_name(project, env)
    route = service.route
    return ServiceBinding(
        environment=name, port=_local(env, project).port, service=service.name,
        route=RouteSpec(pattern=route.path, priority=route.priority, kind=service.kind),
    )


def local_launch(project: Project, service: ServiceConfig) -> Launch:
    """How the local platform starts ``service`` (its ``local`` and ``ecs`` sections)."""
    return launch_of(service)


def _local(env: EnvironmentConfig, project: Project) -> LocalPlatformConfig:
    if env.local is None:
        raise ConfigError([f"environment {environment_name(project, env)} is not on the local platform: "
                           "it has no `local:` section"])
    return env.local


def _traffic(binding: ServiceBinding, service: ServiceConfig, key: str | None) -> TrafficDriver | None:
    """Synthetic requests through the environment's main listener (the router on ``port``),
    so the router's weights split them (with the edge's synthetic ``key``, if any); None
    without the load-test package."""
    try:
        from pipeline.loadtest.synthetic import service_traffic  # noqa: PLC0415
    except ImportError:
        return None
    driver = service_traffic(f"http://127.0.0.1:{binding.port}", service)
    if key is not None:
        driver.requests = keyed(driver.requests, key)
    return driver


def _lambda_traffic(client: PlaneClient, binding: ServiceBinding, service: ServiceConfig,
                    key: str | None) -> TrafficDriver | None:
    """Synthetic requests through the router's Lambda route, counted by the version that ran
    (``X-Lambda-Version``) and mapped to the slot whose alias points at that version."""
    try:
        from pipeline.loadtest.synthetic import service_traffic  # noqa: PLC0415
    except ImportError:
        return None
    from pipeline.local.lambda_.control_client import LambdaControlClient  # noqa: PLC0415 - Lambda only

    control = LambdaControlClient(f"{client.base_url}/lambda/", token=client.token)
    function = lambda_function_name(binding.environment, service.name)
    driver = service_traffic(f"http://127.0.0.1:{binding.port}", service, label_header="X-Lambda-Version",
                             label_of=lambda slot: control.slot_version(function, slot))
    if key is not None:
        driver.requests = keyed(driver.requests, key)
    return driver


def _smoke_stages(service: ServiceConfig) -> HttpSmokeStages:
    if service.kind == "lambda" and service.lambda_ is not None:
        return HttpSmokeStages(smoke_events=service.lambda_.smoke_events)
    path = service.ecs.health_check.path if service.ecs is not None else "/health"
    return HttpSmokeStages(path)


def chain_cold_starts(project: Project, environment: str, service: str,
                      plane: Callable[[], PlaneClient]) -> RuntimeColdStarts | None:
    """The Lambda functions of the request chain ``service`` heads (itself, then what it
    calls) on ``plane``'s runtime, for the load stage's cold-start lines; None when none
    of them is a Lambda function."""
    services = project.services
    calls = warm_order(service, lambda n: services[n].calls if n in services else ())
    chain = [(n, lambda_function_name(environment, n)) for n in (service, *reversed(calls))
             if n in services and services[n].kind == "lambda"]
    if not chain:
        return None
    client = plane()
    return RuntimeColdStarts(LambdaControlClient(f"{client.base_url}/lambda/", token=client.token), chain)


def _lambda_chain(project: Project, environment: str, service: ServiceConfig) -> tuple[str, ...]:
    """The Lambda functions ``service`` calls (``calls:``, transitively), deepest first. ECS
    dependencies are left out: their replicas are long-running processes, never cold."""
    services = project.services
    order = warm_order(service.name, lambda name: services[name].calls if name in services else ())
    return tuple(lambda_function_name(environment, name) for name in order
                 if name in services and services[name].kind == "lambda")


def _lambda_platform(client: PlaneClient, registry: LocalRegistry, binding: ServiceBinding,
                     service: ServiceConfig, stages: StageRunner, chain: tuple[str, ...] = ()) -> Platform:
    """The adapters of ``pipeline.local.lambda_.adapters`` on the plane's Lambda runtime.

    The function is ``lambda_function_name(env, service)``, the one the router invokes;
    its code is the service folder of the release's snapshot.
    """
    from pipeline.local.lambda_.adapters import (  # noqa: PLC0415 - only for Lambda services
        LocalLambdaCompute,
        LocalLambdaMetrics,
        LocalLambdaRouter,
    )

    cfg = service.lambda_
    if cfg is None:
        raise ConfigError([f"{SERVICES_DIR}/{service.name}/service.yaml: kind lambda needs `lambda:`"])
    base = f"{client.base_url}/lambda/"
    function = lambda_function_name(binding.environment, service.name)

    def source(release: Release) -> Path:
        return registry.snapshot_dir(release) / SERVICES_DIR / service.name

    compute = LocalLambdaCompute(
        base, function, source, cfg.handler, memory=cfg.memory, timeout=cfg.timeout,
        reserved=cfg.reserved_concurrency, provisioned=cfg.provisioned_concurrency,
        environment=dict(cfg.environment), token=client.token, chain=chain,
        warm_count=cfg.keep_warm.concurrency if cfg.keep_warm else 1,
        keep_warm=(cfg.keep_warm.every, cfg.keep_warm.concurrency) if cfg.keep_warm else None,
    )
    return Platform(compute=compute, router=LocalLambdaRouter(base, function, token=client.token),
                    metrics=LocalLambdaMetrics(base, function, token=client.token), stages=stages)
