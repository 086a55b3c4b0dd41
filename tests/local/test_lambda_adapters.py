"""The Lambda port adapters over real HTTP to a real runtime, and whole deployments through the engine.

The deployments use the real clock, the in-memory state store and a passing stage runner;
everything else is real: packages, versions, aliases, worker processes and live traffic.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.clock import SystemClock
from pipeline.core.analysis import AnalysisSpec, Check
from pipeline.core.errors import PlatformError, TransientPlatformError
from pipeline.core.model import Release, ServiceRef, Slot, Weights
from pipeline.core.plan import Strategy
from pipeline.core.ports import Platform
from pipeline.core.state import Phase, Timeouts
from pipeline.core.steps import Analyze, Pause, SetWeight, TestStage
from pipeline.engine import EngineSettings, NullSink
from pipeline.local.lambda_.adapters import (
    LocalLambdaCompute,
    LocalLambdaMetrics,
    LocalLambdaRouter,
    lambda_adapters,
)
from pipeline.local.lambda_.server import LambdaServer
from pipeline.operations import Context, deploy
from pipeline.testing import ActionLog, FakeStages, InMemoryStore, release
from tests.local.support.lambda_runtime import http, make_source, wait_until, worker_children

BAD = "import time\ntime.sleep(0.2)\n\ndef handler(event, context):\n    raise RuntimeError('bad release')\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LambdaServer]:
    with LambdaServer(tmp_path / "runtime", seed=3) as running:
        yield running
    assert worker_children() == []


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    return {
        "1.0.0": make_source(tmp_path / "v1", "v1"),
        "2.0.0": make_source(tmp_path / "v2", "v2"),
        "2.0.1": make_source(tmp_path / "bad", "bad", handler=BAD),
    }


def compute_for(server: LambdaServer, sources: dict[str, Path], **options: int) -> LocalLambdaCompute:
    return LocalLambdaCompute(
        server.base_url, "orders", lambda r: sources[r.version], "app.handler", timeout=5.0, **options
    )


def test_compute_publishes_once_and_is_ready_when_provisioned_workers_are(
    server: LambdaServer, sources: dict[str, Path]
) -> None:
    compute = compute_for(server, sources, provisioned=2, reserved=4)
    v1 = release("1.0.0")
    compute.provision(Slot.BLUE, v1)
    compute.provision(Slot.BLUE, v1)  # idempotent
    assert [v["version"] for v in server.call(lambda rt: rt.describe("orders"))["versions"]] == ["1"]
    assert server.call(lambda rt: rt.reserved_concurrency("orders")) == 4
    wait_until(lambda: compute.health(Slot.BLUE, v1).ready)
    health = compute.health(Slot.BLUE, v1)
    assert (health.running, health.desired, health.healthy) == (2, 2, 2) and "READY" in health.detail
    assert not compute.health(Slot.BLUE, release("2.0.0")).revision_matches
    assert not compute.health(Slot.GREEN, v1).ready  # never provisioned

    status, headers, _ = http(compute.endpoint(Slot.BLUE) + "/orders/1")
    assert status == 201 and headers["X-Lambda-Version"] == "1"

    compute.scale_down(Slot.BLUE)
    compute.scale_down(Slot.BLUE)  # idempotent
    assert server.call(lambda rt: rt.provisioned("orders", "1"))["requested"] == 0
    wait_until(lambda: server.call(lambda rt: rt.worker_pids("orders")) == [])
    with pytest.raises(PlatformError, match="no version"):
        compute.endpoint(Slot.GREEN)


def test_router_maps_slot_weights_to_alias_weights_and_reads_them_back(
    server: LambdaServer, sources: dict[str, Path]
) -> None:
    compute, router = compute_for(server, sources), LocalLambdaRouter(server.base_url, "orders")
    compute.provision(Slot.BLUE, release("1.0.0"))
    assert router.get_weights() is None
    with pytest.raises(PlatformError, match="green slot"):
        router.set_weights(Weights(90, 10))
    compute.provision(Slot.GREEN, release("2.0.0"))
    router.set_weights(Weights(90, 10))
    assert server.call(lambda rt: rt.get_alias("orders", "live")) == {"1": 0.9, "2": 0.1}
    assert router.get_weights() == Weights(90, 10)
    router.set_weights(Weights(0, 100))
    assert server.call(lambda rt: rt.get_alias("orders", "live")) == {"2": 1.0}
    assert router.get_weights() == Weights(0, 100)

    server.call(lambda rt: rt.set_alias("orders", "live", {"1": 1.0}))  # a slot's version, changed by hand
    compute.provision(Slot.BLUE, release("2.0.0"))  # both slots now run version 2
    with pytest.raises(PlatformError, match="outside the blue and green slots"):
        router.get_weights()
    router.set_weights(Weights(30, 70))
    assert server.call(lambda rt: rt.get_alias("orders", "live")) == {"2": 1.0}
    assert router.get_weights() == Weights(30, 70)
    # the split is kept in the alias description in the one note format both alias routers use
    assert server.call(lambda rt: rt.alias_description("orders", "live")) == Weights(30, 70).note()


def test_metrics_count_throttles_as_requests_and_errors(
    server: LambdaServer, sources: dict[str, Path]
) -> None:
    compute, metrics = compute_for(server, sources), LocalLambdaMetrics(server.base_url, "orders")
    since = time.time()
    assert metrics.measure(Slot.BLUE, since, time.time() + 1).requests == 0  # no version yet: no data
    compute.provision(Slot.BLUE, release("1.0.0"))
    for event in ({}, {}, {}, {"action": "boom"}):
        server.run(server.runtime.invoke("orders", "blue", event))
    server.call(lambda rt: rt.set_reserved_concurrency("orders", 0))
    for _ in range(2):
        assert server.run(server.runtime.invoke("orders", "blue", {})).throttled
    m = metrics.measure(Slot.BLUE, since, time.time() + 1)
    assert (m.requests, m.errors) == (6, 3)
    assert dict(m.extra) == {"invocations": 4, "throttles": 2, "cold_starts": 1}
    assert m.p95_ms is not None
    assert metrics.measure(Slot.GREEN, since, time.time() + 1).requests == 0


def test_an_unreachable_runtime_is_a_transient_platform_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    router = LocalLambdaRouter(f"http://127.0.0.1:{port}/lambda/", "orders", http_timeout=2)
    with pytest.raises(TransientPlatformError, match="cannot reach the local Lambda runtime"):
        router.get_weights()


def test_the_config_glue_builds_adapters_from_a_service_yaml_model(
    server: LambdaServer, tmp_path: Path
) -> None:
    from pipeline.config import ServiceConfig

    service = ServiceConfig.model_validate({
        "name": "orders", "kind": "lambda", "owner": "dev", "paths": ["services/orders/**"],
        "build": {"context": "services/orders"},
        "lambda": {"handler": "app.handler", "memory": 256, "timeout": "5s", "reserved_concurrency": 3,
                   "environment": {"GREETING": "hi"}, "route": {"path": "/orders/*", "priority": 10}},
    })
    compute, router, _ = lambda_adapters(server.base_url, service, make_source(tmp_path / "src", "v1"))
    compute.provision(Slot.BLUE, release("1.0.0"))
    router.set_weights(Weights(100, 0))
    spec = server.call(lambda rt: rt.version("orders", "1"))
    assert (spec.memory, spec.timeout, spec.environment) == (256, 5.0, {"GREETING": "hi"})
    assert server.call(lambda rt: rt.reserved_concurrency("orders")) == 3


# --- whole deployments ------------------------------------------------------------------


class Traffic:
    """Sends requests to the live alias from a thread, recording each response's status and version."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            status, headers, _ = http(self.url)
            self.seen.append((status, headers.get("X-Lambda-Version", "")))
            time.sleep(0.005)


def context_for(server: LambdaServer, sources: dict[str, Path]) -> Context:
    compute = compute_for(server, sources, provisioned=1)
    platform = Platform(
        compute=compute,
        router=LocalLambdaRouter(server.base_url, "orders"),
        metrics=LocalLambdaMetrics(server.base_url, "orders"),
        stages=FakeStages(ActionLog()),
    )
    clock = SystemClock()
    store = InMemoryStore(clock)  # type: ignore[arg-type]  # any object with now() will do
    return Context(
        store=store,
        locks=store,
        clock=clock,
        sink=NullSink(),
        platform_for=lambda ref: platform,
        actor="tester",
        owner="tester@host",
        settings=EngineSettings(max_action_retries=2),
    )


STRATEGY = Strategy(
    steps=(TestStage(), SetWeight(50), Pause(1.5), Analyze()),
    analysis=AnalysisSpec(
        checks=(Check("error_rate", 0.05),), min_requests=10, interval_seconds=0.5, inconclusive_limit=20
    ),
    timeouts=Timeouts(ready=30, verify=10, stage=30, hold=60, poll=0.1),
)


def first_deploy(ctx: Context, ref: ServiceRef, v1: Release) -> None:
    assert deploy(ctx, ref, v1, STRATEGY).phase is Phase.SUCCEEDED


def test_a_deployment_shifts_live_traffic_to_the_new_version_without_errors(
    server: LambdaServer, sources: dict[str, Path]
) -> None:
    ctx, ref = context_for(server, sources), ServiceRef("orders", "local")
    first_deploy(ctx, ref, release("1.0.0"))
    with Traffic(f"{server.base_url}invoke/orders/live/") as traffic:
        final = deploy(ctx, ref, release("2.0.0"), STRATEGY)
        wait_until(lambda: traffic.seen[-1][1] == "2")
    assert final.phase is Phase.SUCCEEDED, final.reason
    assert server.call(lambda rt: rt.get_alias("orders", "live")) == {"2": 1.0}
    assert server.call(lambda rt: rt.provisioned("orders", "1"))["requested"] == 0  # blue scaled down
    statuses = Counter(status for status, _ in traffic.seen)
    assert set(statuses) == {201}, statuses  # zero failed requests during the shift
    assert {version for _, version in traffic.seen} == {"1", "2"}


def test_a_failing_version_is_rolled_back_by_analysis(server: LambdaServer, sources: dict[str, Path]) -> None:
    ctx, ref = context_for(server, sources), ServiceRef("orders", "local")
    first_deploy(ctx, ref, release("1.0.0"))
    with Traffic(f"{server.base_url}invoke/orders/live/") as traffic:
        final = deploy(ctx, ref, release("2.0.1"), STRATEGY)
        wait_until(lambda: traffic.seen[-1] == (201, "1"))
    assert final.phase is Phase.ROLLED_BACK
    assert "analysis failed: error_rate" in final.reason
    assert server.call(lambda rt: rt.get_alias("orders", "live")) == {"1": 1.0}
    assert server.call(lambda rt: rt.provisioned("orders", "2"))["requested"] == 0  # green scaled down
    assert {version for status, version in traffic.seen if status != 201} == {"2"}  # only the bad one failed
