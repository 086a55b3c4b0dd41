"""A ``kind: lambda`` service on the local plane: ``LocalFactory`` wires the Lambda runtime's
adapters, the engine deploys two releases, and the environment's router sends the service's
path to the function's ``live`` alias (function ``<env>_<service>``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pipeline.clock import SystemClock
from pipeline.config import load_project
from pipeline.core.model import ServiceRef
from pipeline.core.state import Phase
from pipeline.local.factory import LocalFactory
from pipeline.local.plane.lifecycle import plane_processes, read_plane, stop_plane
from pipeline.local.spans import SpanStore
from pipeline.operations import Context, deploy
from pipeline.owners import owner_id
from pipeline.testing import CollectingSink
from tests.local.support.plane import Project, get, git, wait_until

HANDLER = '''
import json

def handle(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"release": "{marker}", "path": event["rawPath"]})}
'''

SERVICE = """\
name: notify
kind: lambda
owner: dev
paths: ["services/notify/**"]
build: {context: services/notify}
lambda:
  handler: handler.handle
  route: {path: "/notify*", priority: 20}
deploy:
  strategy: canary
  steps: [{set_weight: 50}, {pause: 0.5s}]
  timeouts: {ready: 30s, verify: 10s, poll: 0.2s}
"""


@pytest.fixture
def lambda_project(project: Project) -> Iterator[Project]:
    folder = project.root / "services" / "notify"
    folder.mkdir()
    (folder / "service.yaml").write_text(SERVICE)
    project.commit_change("services/notify/handler.py", HANDLER.replace("{marker}", "one"), "notify one")
    yield project
    info = read_plane(project.state_dir)
    stop_plane(project.state_dir)
    if info is not None:
        assert plane_processes(info.id) == []


def test_a_lambda_service_is_deployed_and_served_through_the_router(lambda_project: Project) -> None:
    project = lambda_project
    factory = LocalFactory(load_project(project.root), SystemClock())
    env = factory.project.environment("dev")
    platform = factory.platform(env, factory.project.service("notify"))
    store, locks = factory.stores(env)
    sink = CollectingSink()
    ctx = Context(store=store, locks=locks, clock=factory.clock, sink=sink,
                  platform_for=lambda ref: platform, actor="tester", owner=owner_id("tester"))
    ref, registry = ServiceRef("notify", "dev"), factory.registry(env)
    strategy = factory.project.strategy("notify")
    url = f"http://127.0.0.1:{project.port}/notify/hello"

    first = deploy(ctx, ref, registry.resolve("notify", "HEAD"), strategy)
    assert first.phase is Phase.SUCCEEDED, sink.notes
    status, _, body = get(url)
    assert status == 200 and json.loads(body) == {"release": "one", "path": "/notify/hello"}

    commit = project.commit_change("services/notify/handler.py", HANDLER.replace("{marker}", "two"), "two")
    assert git(project.root, "rev-parse", "HEAD") == commit
    second = deploy(ctx, ref, registry.resolve("notify", commit), strategy)
    assert second.phase is Phase.SUCCEEDED, sink.notes
    assert "traffic verified: blue 50% / green 50%" in "\n".join(sink.notes)
    assert {json.loads(get(url)[2])["release"] for _ in range(5)} == {"two"}
    assert get(f"http://127.0.0.1:{project.port}/orders")[0] == 404  # orders was never deployed here
    plane = read_plane(project.state_dir)
    assert plane is not None
    workers = [p for p in plane_processes(plane.id) if "worker_main" in " ".join(p.cmdline())]
    assert workers  # the runtime's worker processes carry the plane's id; stop_plane ends them

    # traced: the router's span, then the invocation's under the function's name, one trace
    trace_id = "c" * 32
    assert get(url, headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})[0] == 200
    spans = SpanStore.of(project.state_dir)
    wait_until(lambda: {s.service for s in spans.trace(trace_id)} >= {"router", "dev_notify"}, 15, "spans")
    by_service = {s.service: s for s in spans.trace(trace_id)}
    router, invoke = by_service["router"], by_service["dev_notify"]
    assert router.parent_id == "00f067aa0ba902b7" and invoke.parent_id == router.span_id
    assert invoke.name == "invoke"
    assert invoke.attributes["pipeline.release"] == router.attributes["pipeline.release"]  # the version
