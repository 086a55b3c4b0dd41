"""AWS calls and wall time of a Lambda canary through the engine, against moto's server.

    python bench/aws_lambda.py [--events 1] [--warm 2] [--runs 3]

Starts moto's server on 127.0.0.1 (docker-free Lambda), bootstraps a function, deploys a
first release (no stable one yet: stages only), then measures a second deployment with a
canary (test stage, 10% -> pause 60 s -> analyse -> 50% -> pause 60 s -> analyse -> 100%,
then the old slot scaled down). Pauses take no time (``FakeClock``), so the wall time is
the adapters' and the engine's own work plus moto. Prints the calls by operation, the
total next to the minimum such a deployment needs (reasoned below), and the ratio.
Figures are not pass/fail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REGION = "eu-west-1"


def minimum_calls(events: int, warm: int) -> int:
    """The fewest AWS calls a Lambda canary with these steps needs.

    - provision: list versions (reuse check), update code, read $LATEST once (update
      finished), publish, point the slot alias = 5;
    - readiness: invoke each smoke event + each warm-up = events + warm;
    - test stage: each smoke event through the slot alias = events;
    - traffic: 10%, 50%, 100% each written once and read back once = 6;
    - analysis: two analyses, each one get_metric_data for the new version and one for
      the baseline, plus one lookup of the HTTP API's id (its route 5xx) = 5;
    - scale down: release the old version's provisioned concurrency = 1 (idempotent; done
      even when none is configured, so a config change never leaks an allocation).
    """
    return 5 + (events + warm) + events + 6 + 5 + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1, help="smoke events")
    parser.add_argument("--warm", type=int, default=2, help="warm-up invocations")
    parser.add_argument("--runs", type=int, default=3, help="canary deployments to time")
    args = parser.parse_args()

    import requests
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ.update(
        AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
    )
    try:
        calls, seconds = [], []
        for _ in range(args.runs):
            requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
            requests.post(f"{url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10)
            counted, elapsed = run_once(args.events, args.warm)
            calls.append(counted)
            seconds.append(elapsed)
    finally:
        server.stop()
    report(calls[-1], seconds, args.events, args.warm)


def run_once(events: int, warm: int) -> tuple[Counter[str], float]:
    from pipeline.aws.bootstrap import execute
    from pipeline.aws.lambda_.bootstrap import plan
    from pipeline.aws.lambda_.compute import Readiness
    from pipeline.aws.lambda_.platform import platform_for
    from pipeline.aws.lambda_.spec import LambdaSpec
    from pipeline.aws.session import AwsSession, SessionSettings
    from pipeline.core.analysis import AnalysisSpec, Check
    from pipeline.core.model import ServiceRef
    from pipeline.core.plan import Strategy
    from pipeline.core.state import Timeouts
    from pipeline.core.steps import Analyze, Pause, SetWeight, canary
    from pipeline.engine import NullSink
    from pipeline.operations import Context, deploy
    from pipeline.testing import FakeClock, InMemoryStore, release

    counted: Counter[str] = Counter()
    session = AwsSession(SessionSettings(region=REGION, max_attempts=1))
    session.on("provide-client-params", lambda model, **_: counted.update([model.name]))
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        (source / "app.py").write_text("def handler(event, context):\n    return {'statusCode': 200}\n")
        v1 = _commit(source)  # a release's zip is packaged from its commit
        smoke = tuple({"path": f"/orders/{i}", "method": "GET"} for i in range(events))
        spec = LambdaSpec(
            environment="bench", service="orders", region=REGION, account="123456789012",
            handler="app.handler", source=source, route_path="/orders/*",
            readiness=Readiness(smoke_events=smoke, warm_invocations=warm),
            percentile_fallback=True,  # moto has no percentiles
        )
        execute(plan(spec, session, clock))
        platform = platform_for(spec, session, clock, test_route="invoke")
        store = InMemoryStore(clock)
        ctx = Context(store=store, locks=store, clock=clock, sink=NullSink(),
                      platform_for=lambda ref: platform, actor="bench", owner="bench")
        strategy = Strategy(
            steps=canary((SetWeight(10), Pause(60), Analyze(), SetWeight(50), Pause(60), Analyze())),
            analysis=AnalysisSpec(checks=(Check("error_rate", 0.05),), window_seconds=120),
            timeouts=Timeouts(poll=2),
        )
        ref = ServiceRef("orders", "bench")
        deploy(ctx, ref, replace(release("v1"), commit=v1), strategy)
        (source / "app.py").write_text("def handler(event, context):\n    return {'statusCode': 201}\n")
        v2 = _commit(source)
        _metrics(session, clock.now())
        counted.clear()
        started = time.perf_counter()
        final = deploy(ctx, ref, replace(release("v2"), commit=v2), strategy)
        elapsed = time.perf_counter() - started
    if final.phase.value != "succeeded":
        raise SystemExit(f"the canary did not succeed: {final.phase.value}: {final.reason}")
    return counted, elapsed


def _commit(repo: Path) -> str:
    """Commit everything in ``repo`` (a git repository made on first use); its sha."""
    def git(*args: str) -> str:
        who = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
        command = ["git", "-C", str(repo), *who, *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()

    if not (repo / ".git").exists():
        git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "bench")
    return git("rev-parse", "HEAD")


def _metrics(session: Any, now: float) -> None:
    cloudwatch = session.client("cloudwatch")
    for version, invocations in (("3", 50), ("2", 200)):
        dims = [{"Name": "FunctionName", "Value": "orders-bench"},
                {"Name": "Resource", "Value": "orders-bench:live"},
                {"Name": "ExecutedVersion", "Value": version}]
        for minute in range(10):
            ts = dt.datetime.fromtimestamp(now + 60 * minute, tz=dt.UTC)
            cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
                {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": ts, "Value": invocations},
                {"MetricName": "Errors", "Dimensions": dims, "Timestamp": ts, "Value": 0},
            ])


def report(calls: Counter[str], seconds: list[float], events: int, warm: int) -> None:
    total = sum(calls.values())
    least = minimum_calls(events, warm)
    print(f"Lambda canary against moto ({events} smoke event(s), {warm} warm-up invocations)")
    print(f"{'operation':<36}{'calls':>6}")
    for name, count in sorted(calls.items(), key=lambda item: (-item[1], item[0])):
        print(f"{name:<36}{count:>6}")
    print(f"{'total':<36}{total:>6}")
    print(f"minimum needed: {least}; ratio {total / least:.2f}x")
    print(f"wall time: median {statistics.median(seconds) * 1000:.0f} ms over {len(seconds)} run(s) "
          f"(min {min(seconds) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
