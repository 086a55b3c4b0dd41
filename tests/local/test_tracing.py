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
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipeline.cli.main import main
from pipeline.core.model import Slot, Weights
from pipeline.local.adapters import LocalCompute, LocalRouter, ServiceBinding
from pipeline.local.lambda_.package import write_package
from pipeline.local.lambda_.server import LambdaServer
from pipeline.local.plane.control_client import PlaneClient
from pipeline.local.plane.lifecycle import ensure_plane, plane_processes, read_plane, stop_plane
from pipeline.local.plane.otlp import OTLP_PATH, spans_key
from pipeline.local.registry import LocalRegistry
from pipeline.local.spans import SpanRecord, SpanStore
from pipeline.local.specs import HealthCheck, Launch, RouteSpec
from pipeline.tracing import KEY_HEADER
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


def test_pipeline_trace_finds_the_trace_and_shows_its_waterfall(
        shop: Project, capsys: pytest.CaptureFixture[str]) -> None:
    sent = time.time()  # this test's trace, not one an earlier test left (with a caller's parent)
    status, _, _ = get(f"http://127.0.0.1:{shop.port}/orders/quote?product=5")
    assert status == 200
    store = SpanStore.of(shop.state_dir)
    wait_until(lambda: any(t.spans >= 7 for t in store.find(service="catalog", since=sent)),
               timeout=15, what="the trace in the store")
    listed = _pipeline(shop, "trace", "--service", "catalog", "--slot", "blue", "--env", "dev", "--json")
    assert listed.returncode == 0, listed.stderr
    traces = json.loads(listed.stdout)["traces"]
    full = next(t for t in traces if t["spans"] >= 7 and t["start"] >= sent)
    assert full["service"] == "router" and full["slot"] == "blue" and full["status"] == "ok"
    assert {"router", "orders", "catalog"} <= set(full["services"])

    shown = _pipeline(shop, "trace", "show", full["trace_id"])
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    names = [line.split(" +")[0].rstrip() for line in lines if " +" in line]
    assert names[0] == "router: GET /orders*"
    assert "    orders: db.query" in names and "          catalog: db.query" in names
    assert any("█" in line for line in lines)

    # the rest in this process (the same entry point, without another interpreter start each)
    assert _main(shop, capsys, "trace", "show", full["trace_id"], "--json")[0] == 0
    as_json = json.loads(capsys.readouterr().out)
    assert len(as_json["spans"]) == full["spans"]
    assert {s["parent_id"] for s in as_json["spans"]} - {s["span_id"] for s in as_json["spans"]} == {None}

    code, _ = _main(shop, capsys, "trace", "--status", "5xx", "--service", "catalog", "--json")
    assert code == 0 and json.loads(capsys.readouterr().out) == {"traces": []}
    code, stderr = _main(shop, capsys, "trace", "--status", "fine")
    assert code == 2 and "--status 'fine'" in stderr
    code, stderr = _main(shop, capsys, "trace", "show", "f" * 32)
    assert code == 3 and "no trace" in stderr


def _main(shop: Project, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``pipeline --root ROOT ARGS`` in this process: (exit code, stderr); stdout stays captured."""
    code = main(["--root", str(shop.root), *args])
    captured = capsys.readouterr()
    print(captured.out, end="")  # leave stdout for the caller to read
    return code, captured.err


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


def test_the_span_receiver_takes_otlp_with_the_span_key_only(shop: Project) -> None:
    info = read_plane(shop.state_dir)
    assert info is not None
    url = f"{info.url}{OTLP_PATH}"
    finished = _sdk_spans()
    body = encode_spans(finished).SerializeToString()
    protobuf = {"Content-Type": "application/x-protobuf"}

    def post(headers: dict[str, str], data: bytes = body) -> int:
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert post(protobuf) == 401  # no key
    assert post({**protobuf, KEY_HEADER: "0" * 64}) == 401
    assert post({**protobuf, "Authorization": f"Bearer {info.token}"}) == 401  # the control token is not it
    key = {KEY_HEADER: spans_key(info.token)}
    assert post({**key, "Content-Type": "application/json"}) == 415
    assert post({**key, **protobuf}, b"\xff not protobuf") == 400
    assert post({**key, **protobuf}) == 200
    trace_id = format(finished[0].context.trace_id, "032x")
    assert [s.name for s in SpanStore.of(shop.state_dir).trace(trace_id)] == ["posted"]


def _sdk_spans() -> list:  # type: ignore[type-arg]
    exported = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "poster"}))
    provider.add_span_processor(SimpleSpanProcessor(exported))
    with provider.get_tracer("t").start_as_current_span("posted"):
        pass
    return list(exported.get_finished_spans())
