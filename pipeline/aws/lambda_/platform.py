"""Compose the ports of one Lambda service in one AWS environment.

``lambda_platform(session, env, service, clock)`` is what ``pipeline.aws.factory`` calls
for ``kind: lambda`` services; ``platform_for(spec, session, clock)`` does the same from a
``LambdaSpec`` (tests, the bench). The deployment itself is the one engine's, with the
service's own strategy: nothing here is Lambda-specific beyond the adapters.

=============  ============================================================
port           adapter
=============  ============================================================
Compute        ``LambdaCompute``: versions, slot aliases, smoke, warm-up
TrafficRouter  ``LambdaAliasRouter``: weights on the ``live`` alias
Metrics        ``LambdaMetrics``: CloudWatch by ExecutedVersion, alarms
StageRunner    the service's stages through the HTTP API's slot stage, or
               ``InvokeStages`` (``test_route="invoke"``)
=============  ============================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pipeline.aws.lambda_.api import LambdaApi
from pipeline.aws.lambda_.compute import LambdaCompute
from pipeline.aws.lambda_.concurrency import ConcurrencyApi
from pipeline.aws.lambda_.gateway import HttpApi, route_keys
from pipeline.aws.lambda_.metrics import LambdaMetrics
from pipeline.aws.lambda_.package import Package, image_package, package_commit
from pipeline.aws.lambda_.router import LambdaAliasRouter
from pipeline.aws.lambda_.slots import SLOT_ALIASES, SlotVersions
from pipeline.aws.lambda_.spec import LambdaSpec, lambda_spec
from pipeline.aws.lambda_.stages import InvokeStages, invoke_endpoint
from pipeline.aws.lambda_.staging import CodeBucket, bucket_name
from pipeline.aws.lambda_.warmup import ChainWarmer, Hop
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment
from pipeline.core.model import Release, Slot
from pipeline.core.ports import Clock, Platform, StageRunner
from pipeline.loadtest.stages import ServiceStageRunner

if TYPE_CHECKING:
    from pipeline.config import ServiceConfig

__all__ = ["lambda_platform", "packager", "platform_for"]

GUARD_LOOKBACK = 86400.0  # seconds of Duration history the throttling guard looks at


def lambda_platform(
    session: AwsSession,
    env: AwsEnvironment,
    service: ServiceConfig,
    clock: Clock,
    *,
    root: Path = Path(),
    stages: StageRunner | None = None,
    test_route: Literal["http", "invoke"] = "http",
    chain: Sequence[Hop] = (),
) -> Platform:
    """The ports for ``service`` (a ``ServiceConfig`` of kind lambda) in ``env``; ``chain``
    is what it calls, deepest first (``warmup.chain_hops``), warmed before each shift.

    ``root`` is the project root. ``stages`` defaults to the service's own stage runner on the HTTP API's
    slot stages; ``test_route="invoke"`` invokes the slot aliases instead.
    """
    spec = lambda_spec(env, service, root=root)
    if stages is None and test_route == "http":
        stages = _service_stages(root, service, spec.environment)
    return platform_for(spec, session, clock, stages=stages, test_route=test_route, chain=chain)


def platform_for(
    spec: LambdaSpec,
    session: AwsSession,
    clock: Clock,
    *,
    stages: StageRunner | None = None,
    test_route: Literal["http", "invoke"] = "http",
    package_for: Callable[[Release], Package] | None = None,
    pip_args: Sequence[str] = (),
    chain: Sequence[Hop] = (),
) -> Platform:
    """The ports for ``spec``. ``package_for`` defaults to ``packager(spec, pip_args)``."""
    client = session.client("lambda")
    api = LambdaApi(client, spec.function)
    slots = SlotVersions(api)  # shared: provisioning writes it, routing and metrics read it
    cloudwatch = session.client("cloudwatch")
    gateway = HttpApi(session.client("apigatewayv2"), spec.environment)
    metrics = LambdaMetrics(
        cloudwatch,
        api,
        alias=spec.alias,
        alarm_names=spec.alarm_names,
        slots=slots,
        sleep=clock.sleep,
        percentile_fallback=spec.percentile_fallback,
        api_id=lambda: (found.api_id if (found := gateway.find()) else None),
        routes=route_keys(spec.route_path),
    )

    def recent_p95() -> float | None:
        now = clock.now()
        return metrics.duration_p95_ms(now - GUARD_LOOKBACK, now)

    def test_endpoint(slot: Slot) -> str:
        if test_route == "invoke":
            return invoke_endpoint(spec.function, SLOT_ALIASES[slot])
        return HttpApi(session.client("apigatewayv2"), spec.environment).stage_url(slot)

    compute = LambdaCompute(
        api,
        ConcurrencyApi(client, spec.function),
        clock,
        settings=spec.settings,
        package_for=package_for or packager(spec, pip_args),
        readiness=spec.readiness,
        p95_ms=recent_p95,
        test_endpoint=test_endpoint,
        slots=slots,
        bucket=CodeBucket(session.client("s3"), bucket_name(spec.account, spec.region), spec.region)
        if spec.package_type == "zip"
        else None,
        warm_chain=ChainWarmer(client, chain, spec.readiness.provisioned_concurrency
                               or spec.readiness.warm_invocations),
    )
    if stages is None:
        stages = InvokeStages(client, spec.readiness.smoke_events, spec.route_path)
    router = LambdaAliasRouter(api, spec.alias, slots)
    return Platform(compute=compute, router=router, metrics=metrics, stages=stages)


def packager(spec: LambdaSpec, pip_args: Sequence[str] = ()) -> Callable[[Release], Package]:
    """How a release becomes a package: its image by digest, or the zip of ``spec.source``
    as the release's commit has it (never the working tree).

    Zips are built once per process and release (provisioning is retried; pip is slow).
    """
    if spec.package_type == "image":
        return image_package
    built: dict[str, Package] = {}

    def build(release: Release) -> Package:
        if release.digest not in built:
            built[release.digest] = package_commit(spec.source, release.commit, pip_args=pip_args)
        return built[release.digest]

    return build


class _OneService:
    """The slice of ``pipeline.config.Project`` that ``ServiceStageRunner.from_config`` reads."""

    def __init__(self, root: Path, service: ServiceConfig) -> None:
        self.root = root
        self._service = service

    def service(self, name: str) -> ServiceConfig:
        return self._service


def _service_stages(root: Path, service: ServiceConfig, environment: str) -> StageRunner:
    """The service's test and load stages (``pipeline.loadtest``) over HTTP."""
    return ServiceStageRunner.from_config(_OneService(root, service), service, environment)
