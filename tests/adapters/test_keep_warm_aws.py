"""Cold starts across a chain on AWS (moto server): the keep-warm schedule ``pipeline
bootstrap`` creates (EventBridge rule, targets on the live alias, Lambda permission),
idempotently, and the chain's warm-up before a shift: dependencies deepest first, then the
new version, every call recorded through the session's hooks."""
# ruff: noqa: F401, F811 - the ``lambda_aws`` fixture is imported, then requested by name

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.aws.bootstrap import execute
from pipeline.aws.lambda_.compute import LambdaCompute
from pipeline.aws.lambda_.keepwarm import BOOTSTRAP_ACTIONS, keep_warm_steps, rate
from pipeline.aws.lambda_.package import package_function
from pipeline.aws.lambda_.permissions import IAM_ACTIONS
from pipeline.aws.lambda_.platform import platform_for
from pipeline.aws.lambda_.warmup import FunctionHop, HttpHop
from pipeline.core.keep_warm import KEEP_WARM_KEY
from pipeline.core.model import Slot
from pipeline.testing import release
from tests.adapters.support.lambda_world import LambdaWorld, lambda_aws

WRITES = ("events:Put", "events:Remove", "lambda:AddPermission", "lambda:RemovePermission")


def test_bootstrap_creates_the_schedule_targets_and_permission_once(lambda_aws: LambdaWorld) -> None:
    spec = lambda_aws.spec()
    lambda_aws.bootstrap(spec)
    lambda_aws.calls.clear()

    planned = keep_warm_steps(spec, lambda_aws.session, 300.0, 2)
    assert [(s.kind, s.name, s.action) for s in planned] == [
        ("keep-warm rule", "pipeline-keep-warm-orders-dev", "create"),
        ("keep-warm targets", "pipeline-keep-warm-orders-dev", "create"),
        ("keep-warm permission", "orders-dev:live", "create"),
    ]
    assert [s.kind for s in execute(planned)] == [s.kind for s in planned]
    assert [n for n, _ in lambda_aws.calls.made if n.startswith(WRITES)] == [
        "events:PutRule", "events:PutTargets", "lambda:AddPermission",
    ]
    # every call made is in the bootstrap policy's declarations
    assert {n for n, _ in lambda_aws.calls.made} <= BOOTSTRAP_ACTIONS | {"lambda:GetPolicy"}
    assert BOOTSTRAP_ACTIONS <= IAM_ACTIONS

    events = lambda_aws.session.client("events")
    rule = events.describe_rule(Name="pipeline-keep-warm-orders-dev")
    assert (rule["ScheduleExpression"], rule["State"]) == ("rate(5 minutes)", "ENABLED")
    targets = events.list_targets_by_rule(Rule="pipeline-keep-warm-orders-dev")["Targets"]
    assert sorted(t["Id"] for t in targets) == ["keep-warm-1", "keep-warm-2"]
    assert {t["Arn"] for t in targets} == {f"{spec.function_arn}:live"}
    assert all(json.loads(t["Input"]) == {KEEP_WARM_KEY: True} for t in targets)
    policy = json.loads(lambda_aws.session.client("lambda").get_policy(
        FunctionName=spec.function, Qualifier="live")["Policy"])
    statement = next(s for s in policy["Statement"] if s["Sid"] == "pipeline-keep-warm-live")
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert rule["Arn"] in json.dumps(statement["Condition"])

    lambda_aws.calls.clear()
    again = keep_warm_steps(spec, lambda_aws.session, 300.0, 2)
    assert {s.action for s in again} == {"exists"} and execute(again) == []
    assert [n for n, _ in lambda_aws.calls.made if n.startswith(WRITES)] == []


def test_a_changed_schedule_or_concurrency_is_applied_in_place(lambda_aws: LambdaWorld) -> None:
    spec = lambda_aws.spec()
    lambda_aws.bootstrap(spec)
    execute(keep_warm_steps(spec, lambda_aws.session, 300.0, 3))

    changed = keep_warm_steps(spec, lambda_aws.session, 60.0, 1)
    assert [s.action for s in changed] == ["create", "create", "exists"]
    execute(changed)
    events = lambda_aws.session.client("events")
    rule = events.describe_rule(Name="pipeline-keep-warm-orders-dev")
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    targets = events.list_targets_by_rule(Rule="pipeline-keep-warm-orders-dev")["Targets"]
    assert [t["Id"] for t in targets] == ["keep-warm-1"]
    assert {s.action for s in keep_warm_steps(spec, lambda_aws.session, 60.0, 1)} == {"exists"}
    assert (rate(120.0), rate(3600.0)) == ("rate(2 minutes)", "rate(60 minutes)")


@pytest.fixture
def health_server(lambda_aws: LambdaWorld) -> Iterator[str]:
    """A real HTTP server standing for an ECS dependency; its GETs go into the call record."""
    calls = lambda_aws.calls

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            calls.made.append(("http:GET", {"path": self.path}))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_warm_up_covers_the_chain_deepest_first_then_the_new_version(
    lambda_aws: LambdaWorld, health_server: str
) -> None:
    back, front = lambda_aws.spec(service="back", route_path="/back/*"), lambda_aws.spec()
    lambda_aws.bootstrap(back)
    lambda_aws.bootstrap(front)
    chain = (FunctionHop("back-dev"), HttpHop("catalog", f"{health_server}/catalog/health"),
             HttpHop("search", None))
    platform = platform_for(front, lambda_aws.session, lambda_aws.clock, test_route="invoke",
                            package_for=lambda _: package_function(front.source), chain=chain)
    compute = platform.compute
    assert isinstance(compute, LambdaCompute)
    compute.provision(Slot.BLUE, release("v1"))
    lambda_aws.calls.clear()

    health = compute.health(Slot.BLUE, release("v1"))

    assert health.ready, health.detail
    chained = "warmed the chain: back-dev:live 2/2, catalog GET 200, search: no aws.url to reach it"
    assert chained in health.detail
    made = [(n, p) for n, p in lambda_aws.calls.made if n in ("lambda:Invoke", "http:GET")]
    hops = [f"{p['FunctionName']}:{p['Qualifier']}" if n == "lambda:Invoke" else p["path"] for n, p in made]
    # the smoke event first (it judges the version), then the warm-up: deepest dependency first
    assert hops == ["orders-dev:2", "back-dev:live", "back-dev:live", "/catalog/health", "orders-dev:2",
                    "orders-dev:2"]
    warm_payloads = [json.loads(p["Payload"]) for n, p in made[1:] if n == "lambda:Invoke"]
    assert all(payload[KEEP_WARM_KEY] is True for payload in warm_payloads)

    lambda_aws.calls.clear()  # once per version: the next health check warms nothing again
    assert compute.health(Slot.BLUE, release("v1")).ready
    assert lambda_aws.calls.named("Invoke") == []
