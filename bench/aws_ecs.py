"""AWS calls and wall time of one full ECS canary against moto, next to the minimum.

    python bench/aws_ecs.py [--runs N]

Starts moto's server in-process, builds an environment (VPC, ALB with live and test
listeners, cluster), bootstraps the orders service, deploys 1.0.0 to blue, then measures
the canary of 2.0.0 to green, from a fresh session and fresh adapters (as a new CI job
would run it), through the real engine with a fake clock:

    test stage -> 20% -> pause 60 s -> analyse -> 50% -> pause 60 s -> analyse
    -> 100% -> scale blue down

It prints every AWS call the deployment made, by operation, split into the platform's
calls (ECS, ELB, CloudWatch) and the state store's (DynamoDB), the minimum number of
platform calls such a deployment needs (reasoned below) and the ratio, and the wall time
(moto on this machine: compare ratios and counts, not seconds).

The minimum, for a canary with W weight changes (3: 20, 50, 100), A analyses (2) and a
stable release to compare with, where the rule and target-group ARNs are not configured:

- look up the two target groups' ARNs (1) and the service's rule on each listener (2);
- register the new task definition revision (1) and point the slot service at it (1);
- observe readiness once: the service (1) and its targets' health (1);
- point the test listener rule at the new slot (1) and learn the test URL: the test
  listener (1) and its load balancer's DNS name (1);
- per weight change, write the rule (1) and read it back to verify (1): 2W;
- per analysis, the new slot's metrics (1) and the stable slot's baseline (1): 2A;
- scale the old slot down (1).

That is 12 + 2W + 2A = 22 for this canary. Every extra call of the adapters is a read
that makes an action idempotent or truthful (describe before update, read the rule before
writing it, describe the revision to know the slot runs *this* release), or moto refusing
the p95 statistic once before the adapter falls back to Maximum.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

W, A = 3, 2
MINIMUM = 12 + 2 * W + 2 * A
STORE_SERVICE = "dynamodb"


def start_moto() -> Any:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_SESSION_TOKEN="bench",
        AWS_DEFAULT_REGION="eu-west-1",
    )
    os.environ.pop("AWS_PROFILE", None)
    return server


def one_run(url: str) -> tuple[Counter[str], float, str]:
    """Reset moto, set up, deploy 1.0.0, then count the calls and time of the 2.0.0 canary."""
    import requests

    from pipeline.core.model import Slot
    from pipeline.testing import FakeClock
    from tests.adapters.support.ecs import (
        START,
        bootstrap,
        create_infrastructure,
        harness,
        new_session,
        orders_spec,
        put_traffic,
        register_targets,
    )

    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    env, spec, clock = create_infrastructure(), orders_spec(), FakeClock(START)
    session = new_session(max_attempts=1)
    bootstrap(session, env, spec, clock)
    h = harness(session, env, spec, clock)
    register_targets(session, spec, Slot.BLUE, spec.desired_count)
    register_targets(session, spec, Slot.GREEN, spec.desired_count)
    put_traffic(session, env, spec, Slot.GREEN, start=clock.now(), seconds=1800)
    put_traffic(session, env, spec, Slot.BLUE, start=clock.now(), seconds=1800)
    h.deploy("1.0.0")

    fresh = new_session(max_attempts=1)  # a new process: no cached ARNs or revisions
    calls: Counter[str] = Counter()
    fresh.on(
        "before-call", lambda model, **_: calls.update([f"{model.service_model.signing_name}:{model.name}"])
    )
    started = time.perf_counter()
    state = harness(fresh, env, spec, clock).deploy("2.0.0")
    elapsed = time.perf_counter() - started
    return calls, elapsed, state.phase.value


def report(calls: Counter[str], times: list[float], phase: str) -> None:
    platform = {op: n for op, n in calls.items() if not op.startswith(STORE_SERVICE)}
    store = {op: n for op, n in calls.items() if op.startswith(STORE_SERVICE)}
    print(f"ECS canary 2.0.0 (stable 1.0.0): ended {phase}; {W} weight changes, {A} analyses\n")
    print("platform calls (ECS, ELB, CloudWatch):")
    for op, n in sorted(platform.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:4d}  {op}")
    total = sum(platform.values())
    print(f"  {total:4d}  total; minimum {MINIMUM} (see the module docstring); ratio {total / MINIMUM:.2f}\n")
    print("state store calls (DynamoDB: a commit per action, the inbox before waits, history, the lock):")
    for op, n in sorted(store.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:4d}  {op}")
    print(f"  {sum(store.values()):4d}  total\n")
    median = statistics.median(times)
    per_call = median / max(1, sum(calls.values())) * 1000
    print(
        f"wall time against moto: median {median:.3f} s over {len(times)} run(s) ({per_call:.1f} ms per call)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server = start_moto()
    try:
        url = os.environ["AWS_ENDPOINT_URL"]
        results = [one_run(url) for _ in range(max(1, args.runs))]
    finally:
        server.stop()
    calls, _, phase = results[-1]
    if any(r[0] != calls for r in results):
        print("note: call counts differed between runs", file=sys.stderr)
    report(calls, [r[1] for r in results], phase)


if __name__ == "__main__":
    main()
