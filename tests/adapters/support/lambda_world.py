"""Shared fixtures of the Lambda adapter tests (the test_lambda_* modules import ``lambda_aws``).

``lambda_aws`` switches the moto server to its docker-free Lambda (``invoke`` answers the
request payload, or the next canned response queued with ``queue_responses``), and gives
an ``AwsSession`` with one attempt per call and a recorder of every AWS call made.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from pipeline.aws.bootstrap import execute
from pipeline.aws.lambda_.bootstrap import plan
from pipeline.aws.lambda_.compute import Readiness
from pipeline.aws.lambda_.package import Package, package_function
from pipeline.aws.lambda_.platform import platform_for
from pipeline.aws.lambda_.spec import LambdaSpec
from pipeline.aws.session import AwsSession, SessionSettings
from pipeline.core.analysis import AnalysisSpec, Check
from pipeline.core.model import Release
from pipeline.core.plan import Strategy
from pipeline.core.ports import Platform
from pipeline.core.state import Timeouts
from pipeline.core.steps import Analyze, Pause, SetWeight, canary
from pipeline.operations import Context
from pipeline.testing import CollectingSink, FakeClock, InMemoryStore
from tests.adapters.conftest import REGION

ACCOUNT = "123456789012"
SMOKE = {"rawPath": "/orders", "requestContext": {"http": {"method": "GET"}}}


@dataclass
class Calls:
    """Every AWS call the adapters made: ``service:Operation`` with its parameters."""

    made: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.made.append((f"{model.service_model.service_name}:{model.name}", dict(params)))

    def count(self) -> Counter[str]:
        return Counter(name for name, _ in self.made)

    def named(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.made if name.endswith(f":{operation}")]

    def clear(self) -> None:
        self.made.clear()


@dataclass
class LambdaWorld:
    url: str
    session: AwsSession
    clock: FakeClock
    calls: Calls
    source: Path

    def queue_responses(self, *payloads: object) -> None:
        """Canned answers for the next invocations (any function, this region)."""
        results = [p if isinstance(p, str) else json.dumps(p) for p in payloads]
        answer = requests.post(
            f"{self.url}/moto-api/static/lambda-simple/response",
            json={"results": results, "region": REGION},
            timeout=10,
        )
        answer.raise_for_status()

    def spec(self, **changes: Any) -> LambdaSpec:
        base: dict[str, Any] = {
            "environment": "dev",
            "service": "orders",
            "region": REGION,
            "account": ACCOUNT,
            "handler": "app.handler",
            "source": self.source,
            "route_path": "/orders/*",
            "readiness": Readiness(smoke_events=(SMOKE,), warm_invocations=2),
            "percentile_fallback": True,  # the test endpoint answers p95 queries with HTTP 500
        }
        return LambdaSpec(**{**base, **changes})

    def bootstrap(self, spec: LambdaSpec) -> None:
        execute(plan(spec, self.session, self.clock))

    def platform(self, spec: LambdaSpec) -> Platform:
        # These tests are about versions, aliases and checks, with releases that name no
        # real commit: the function is packaged from its folder as the test wrote it.
        # Packaging from a release's commit is test_lambda_safety's.
        def package(release: Release) -> Package:
            return package_function(spec.source)

        return platform_for(spec, self.session, self.clock, test_route="invoke", package_for=package)

    def context(self, platform: Platform) -> tuple[Context, InMemoryStore, CollectingSink]:
        store, sink = InMemoryStore(self.clock), CollectingSink()
        ctx = Context(
            store=store,
            locks=store,
            clock=self.clock,
            sink=sink,
            platform_for=lambda ref: platform,
            actor="tester",
            owner="test-run",
        )
        return ctx, store, sink

    def write_code(self, body: str) -> None:
        (self.source / "app.py").write_text(f"def handler(event, context):\n    return {body}\n")

    def put_metrics(
        self,
        function: str,
        version: str,
        *,
        invocations: int,
        errors: int = 0,
        throttles: int = 0,
        duration_ms: float = 40.0,
        minutes: int = 60,
        aggregate: bool = False,
        step: int = 60,
    ) -> None:
        """Datapoints every ``step`` seconds for ``version`` through alias ``live``, from now on.

        As Lambda does, invocations, errors and throttles also count in the alias's series
        (dimensions FunctionName and Resource), and throttles only there: a throttled
        request executes no version. ``aggregate`` publishes everything as the alias's
        series only.
        """
        cloudwatch = self.session.client("cloudwatch")
        dims = [
            {"Name": "FunctionName", "Value": function},
            {"Name": "Resource", "Value": f"{function}:live"},
        ]
        if not aggregate:
            dims.append({"Name": "ExecutedVersion", "Value": version})
        start = dt.datetime.fromtimestamp(self.clock.now(), tz=dt.UTC)
        for offset in range(0, minutes * 60, step):
            ts = start + dt.timedelta(seconds=offset)
            values = {
                "Invocations": invocations,
                "Errors": errors,
                "Throttles": throttles,
                "Duration": duration_ms,
            }
            data = [
                {"MetricName": name, "Dimensions": dims, "Timestamp": ts, "Value": float(v)}
                for name, v in values.items()
                if aggregate or name != "Throttles"
            ]
            if not aggregate:
                data += [
                    {"MetricName": n, "Dimensions": dims[:2], "Timestamp": ts, "Value": float(values[n])}
                    for n in ("Invocations", "Errors", "Throttles")
                ]
            cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data)


@pytest.fixture
def lambda_aws(aws: str, tmp_path: Path) -> Iterator[LambdaWorld]:
    docker_free = {"lambda": {"use_docker": False}}
    requests.post(f"{aws}/moto-api/config", json=docker_free, timeout=10).raise_for_status()
    session = AwsSession(SessionSettings(region=REGION, max_attempts=1))
    calls = Calls()
    session.on("provide-client-params", calls.record)
    source = tmp_path / "fn"
    source.mkdir()
    world = LambdaWorld(aws, session, FakeClock(), calls, source)
    world.write_code("{'statusCode': 200, 'body': 'v1'}")
    yield world


def canary_strategy() -> Strategy:
    """10% -> analyse -> 50% -> analyse; a minute's bake each; errors above 5% fail."""
    steps = canary((SetWeight(10), Pause(60), Analyze(), SetWeight(50), Pause(60), Analyze()))
    return Strategy(
        steps=steps,
        analysis=AnalysisSpec(
            checks=(Check("error_rate", 0.05),),
            min_requests=20,
            window_seconds=120,
            interval_seconds=30,
            failure_limit=0,
        ),
        timeouts=Timeouts(ready=30, verify=10, poll=2),
    )
