"""End-to-end tracing on the local platform: router -> orders -> catalog is ONE trace.

One plane for the module runs the real example services (``services/orders`` and
``services/catalog``, copied into a throwaway git project) behind the environment's router.
A request to orders' quote endpoint goes router -> orders (database read, call to catalog)
-> router -> catalog (database read); every process exports its spans by OTLP/HTTP (or, the
router, in process) to the plane's span store, and ``pipeline trace`` finds and shows them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipeline.core.model import Slot, Weights
from pipeline.local.adapters import LocalCompute, LocalRouter, ServiceBinding
from pipeline.local.lambda_.package import write_package
from pipeline.local.lambda_.server import LambdaServer
from pipeline.local.plane.control_client import PlaneClient
from pipeline.local.plane.lifecycle import ensure_plane, plane_processes, stop_plane
from pipeline.local.registry import LocalRegistry
from pipeline.local.spans import SpanRecord, SpanStore
from pipeline.local.specs import HealthCheck, Launch, RouteSpec
from tests.local.support.plane import Project, free_port_pair, get, git, wait_until

REPO = Path(__file__).resolve().parents[2]
SERVICE_YAML = """\
name: {name}
kind: ecs
owner: dev
paths: ["services/{name}/**"]
build: {{context: services/{name}}}
local: {{command: python -m app, replicas: 1}}
ecs:
  container: {name}
  port: 8080
  health_check: {{path: /health, interval: 5s, timeout: 2s}}
  route: {{path: "/{name}*", priority: {priority}}}
  deregistration_delay: 1s
"""
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _project(root: Path) -> Project:
    port = free_port_pair()
    root.mkdir(parents=True)
    (root / "pipeline.yaml").write_text(textwrap.dedent(f"""\
        project: shop
        organisations: {{dev: {{members: []}}}}
        environments:
          dev: {{platform: local, owner: dev, local: {{port: {port}}}}}
        """))
    (root / ".gitignore").write_text(".pipeline/\n")
    for priority, name in enumerate(("orders", "catalog"), start=1):
        folder = root / "services" / name
        folder.mkdir(parents=True)
        for file in ("app.py", "telemetry.py", "VERSION"):
            shutil.copy(REPO / "services" / name / file, folder / file)
        (folder / "service.yaml").write_text(SERVICE_YAML.format(name=name, priority=priority * 10))
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "test")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "orders and catalog")
    return Project(root, port, git(root, "rev-parse", "HEAD"))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """Orders and catalog serving on the blue slot of ``dev`` (one replica each)."""
    project = _project(tmp_path_factory.mktemp("tracing") / "repo")
    info, _ = ensure_plane(project.state_dir)
    try:
        client = PlaneClient.for_state_dir(project.state_dir)
        registry = LocalRegistry(project.root, project.state_dir)
        launch = Launch(command=("python", "-m", "app"), replicas=1,
                        health=HealthCheck(path="/health", interval=0.5, timeout=1.0),
                        drain_timeout=1.0, stop_timeout=3.0)
        for priority, name in enumerate(("orders", "catalog"), start=1):
            binding = ServiceBinding("dev", project.port, name, RouteSpec(f"/{name}*", priority * 10))
            compute = LocalCompute(client, binding, launch, registry.snapshot_dir)
            release = registry.resolve(name, "HEAD")
            compute.provision(Slot.BLUE, release)
            LocalRouter(client, binding).set_weights(Weights(100, 0))
            wait_until(lambda c=compute, r=release: c.health(Slot.BLUE, r).ready,  # type: ignore[misc]
                       timeout=30, what=f"{name} ready")
        yield project
    finally:
        stop_plane(project.state_dir)
        assert plane_processes(info.id) == []


def _trace_of(store: SpanStore, trace_id: str, expected: int) -> list[SpanRecord]:
    """The trace's spans once ``expected`` of them arrived (exporters send every 0.5 s)."""
    wait_until(lambda: len(store.trace(trace_id)) >= expected, timeout=15, what=f"{expected} spans")
    return store.trace(trace_id)


def test_a_request_through_router_orders_and_catalog_is_one_trace(shop: Project) -> None:
    status, _, body = get(f"http://127.0.0.1:{shop.port}/orders/quote?product=3&quantity=2",
                                headers={"traceparent": TRACEPARENT})
    assert status == 200, body
    assert json.loads(body)["total_cents"] == 2 * 399
    trace_id = TRACEPARENT.split("-")[1]  # the caller's trace is continued, not replaced
    spans = _trace_of(SpanStore.of(shop.state_dir), trace_id, expected=7)
    by_id = {s.span_id: s for s in spans}

    def parent(span: SpanRecord) -> SpanRecord | None:
        return by_id.get(span.parent_id or "")

    routed = {s.attributes["pipeline.service"]: s for s in spans if s.service == "router"}
    router_orders, router_catalog = routed["orders"], routed["catalog"]
    assert router_orders.parent_id == "00f067aa0ba902b7"  # the caller's span
    assert router_orders.attributes["pipeline.slot"] == "blue"
    assert router_orders.attributes["http.response.status_code"] == 200
    assert router_orders.attributes["pipeline.cold_start"] is False
    assert router_orders.attributes["pipeline.throttled"] is False
    orders = next(s for s in spans if s.service == "orders" and s.name == "GET /orders/quote")
    assert parent(orders) is router_orders
    orders_db = next(s for s in spans if s.service == "orders" and s.name == "db.query")
    assert parent(orders_db) is orders
    call = next(s for s in spans if s.service == "orders" and s.name == "call catalog")
    assert parent(call) is orders
    assert parent(router_catalog) is call
    catalog = next(s for s in spans if s.service == "catalog" and s.name == "GET /catalog/{id}")
    assert parent(catalog) is router_catalog
    assert catalog.attributes["pipeline.slot"] == "blue" and catalog.attributes["pipeline.release"]
    catalog_db = next(s for s in spans if s.service == "catalog" and s.name == "db.query")
    assert parent(catalog_db) is catalog
    assert all(s.start >= router_orders.start - 0.01 and s.end <= router_orders.end + 0.01 for s in spans)


def _pipeline(shop: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pipeline", *args], cwd=shop.root, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}, check=False)


def test_pipeline_trace_finds_the_trace_and_shows_its_waterfall(shop: Project) -> None:
    status, _, _ = get(f"http://127.0.0.1:{shop.port}/orders/quote?product=5")
    assert status == 200
    store = SpanStore.of(shop.state_dir)
    wait_until(lambda: any(t.spans >= 7 for t in store.find(service="catalog", since=time.time() - 60)),
               timeout=15, what="the trace in the store")
    listed = _pipeline(shop, "trace", "--service", "catalog", "--slot", "blue", "--env", "dev", "--json")
    assert listed.returncode == 0, listed.stderr
    traces = json.loads(listed.stdout)["traces"]
    full = next(t for t in traces if t["spans"] >= 7)
    assert full["service"] == "router" and full["slot"] == "blue" and full["status"] == "ok"
    assert {"router", "orders", "catalog"} <= set(full["services"])

    shown = _pipeline(shop, "trace", "show", full["trace_id"])
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    names = [line.split(" +")[0].rstrip() for line in lines if " +" in line]
    assert names[0] == "router: GET /orders*"
    assert "    orders: db.query" in names and "          catalog: db.query" in names
    assert any("█" in line for line in lines)

    as_json = json.loads(_pipeline(shop, "trace", "show", full["trace_id"], "--json").stdout)
    assert len(as_json["spans"]) == full["spans"]

    none = _pipeline(shop, "trace", "--status", "5xx", "--service", "catalog", "--json")
    assert json.loads(none.stdout) == {"traces": []}
    bad = _pipeline(shop, "trace", "--status", "fine")
    assert bad.returncode == 2 and "--status 'fine'" in bad.stderr and "Traceback" not in bad.stderr


TRACE_HANDLER = '''
import os


def handler(event, context):
    return {"traceparent": os.environ.get("TRACEPARENT")}
'''


def test_a_lambda_invocation_is_a_span_of_the_callers_trace_and_the_handler_gets_its_context(
        tmp_path: Path) -> None:
    exported = InMemorySpanExporter()

    def provider(function: str) -> TracerProvider:
        made = TracerProvider(resource=Resource.create({"service.name": function}))
        made.add_span_processor(SimpleSpanProcessor(exported))
        return made

    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_text(TRACE_HANDLER)
    write_package(source, tmp_path / "fn.zip")
    with LambdaServer(tmp_path / "runtime", seed=7) as server:
        server.runtime.tracing.use(provider)
        server.call(lambda rt: rt.publish_version("orders", tmp_path / "fn.zip", "app.handler", memory=128,
                                                  timeout=10.0))
        event = {"rawPath": "/", "headers": {"traceparent": TRACEPARENT}}
        first = server.run(server.runtime.invoke("orders", "1", event))
        second = server.run(server.runtime.invoke("orders", "1", event))
        server.runtime.tracing.use(None)
    spans = exported.get_finished_spans()
    assert [s.name for s in spans] == ["invoke", "invoke"]
    cold, warm = spans
    assert format(cold.context.trace_id, "032x") == TRACEPARENT.split("-")[1]
    assert cold.parent is not None and format(cold.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert cold.resource.attributes["service.name"] == "orders"
    assert (cold.attributes["pipeline.cold_start"], warm.attributes["pipeline.cold_start"]) == (True, False)
    assert cold.attributes["pipeline.release"] == "1" and cold.attributes["pipeline.throttled"] is False
    # the handler ran inside the invocation span: its TRACEPARENT names that span
    assert first.payload["traceparent"].split("-")[2] == format(cold.context.span_id, "016x")
    assert second.payload["traceparent"].split("-")[2] == format(warm.context.span_id, "016x")
