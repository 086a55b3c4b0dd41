"""Rollback reaction and the cost of a bad canary, on the real local platform.

    python bench/rollback.py [--rounds 3] [--workers 6]

In a fresh clone of the project (under .pipeline/bench), orders is deployed, then per
round a good release and a bad release (a committed fault.json failing 50% of /orders)
go through the same canary (20% -> pause 2s -> analyse ...) under steady load from a
threaded HTTP client on loopback. Printed side by side per round:

- failed requests: good canary (the baseline: should be 0) vs bad canary, and the bound
  the bad one should stay under: requests that reached the new slot;
- exposure: first to last failed request seen by the client;
- reaction: from the failing verdict to 100% verified back on the old slot (engine side),
  and from the verdict to the last failed request seen by the client.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import operations as ops
from pipeline.app import App
from pipeline.core.analysis import AnalysisSpec, Check
from pipeline.core.model import ServiceRef
from pipeline.core.plan import Strategy
from pipeline.core.state import Timeouts
from pipeline.core.steps import Analyze, Pause, SetWeight, canary
from pipeline.demo.workspace import fresh_clone, make_release
from pipeline.engine import NullSink
from pipeline.local.plane.lifecycle import state_dir_of, stop_plane

REF = ServiceRef("orders", "dev")
STRATEGY = Strategy(
    steps=canary((SetWeight(20), Pause(2), Analyze(), SetWeight(50), Pause(2), Analyze())),
    analysis=AnalysisSpec(
        checks=(Check("error_rate", 0.02),),
        min_requests=15,
        window_seconds=2,
        interval_seconds=1,
        inconclusive_limit=4,
    ),
    timeouts=Timeouts(ready=60, verify=10, stage=60, poll=0.2),
)


@dataclass
class Client:
    """Keep-alive GET loops on /orders; records (time, status, slot) of every answer."""

    port: int
    workers: int
    answers: list[tuple[float, int, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Client:
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.workers)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def _loop(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.is_set():
            try:
                conn.request("GET", "/orders")
                resp = conn.getresponse()
                resp.read()
                row = (time.time(), resp.status, resp.getheader("x-pipeline-slot") or "?")
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                row = (time.time(), 599, "?")
            with self._lock:
                self.answers.append(row)


def _round(app: App, ctx: ops.Context, good: str, bad: str, workers: int) -> dict[str, float]:
    port = int(app.environment("dev").local.port)
    figures: dict[str, float] = {}
    for name, sha in (("good", good), ("bad", bad)):
        release = app.release("orders", "dev", None, sha)
        with Client(port, workers) as client:
            time.sleep(1)
            state = ops.deploy(ctx, REF, release, STRATEGY)
            time.sleep(1)
        failed = [a for a in client.answers if a[1] >= 500]
        figures[f"{name}_requests"] = len(client.answers)
        figures[f"{name}_failed"] = len(failed)
        if name == "bad":
            assert state.phase.value == "rolled_back", state.reason
            records = [r for r in ctx.store.history(REF) if r.deployment == state.id]
            verdict = next(r.ts for r in records if r.detail.startswith("rolling back"))
            verified = next(
                r.ts for r in records if r.ts >= verdict and r.detail.startswith("traffic verified")
            )
            figures["bad_to_new_slot"] = sum(1 for a in client.answers if a[2] == state.new_slot.value)
            figures["reaction_engine_ms"] = (verified - verdict) * 1000
            figures["exposure_s"] = (failed[-1][0] - failed[0][0]) if failed else 0.0
            figures["verdict_to_last_failure_ms"] = ((failed[-1][0] - verdict) * 1000) if failed else 0.0
            # back to good for the next round
            ops.deploy(ctx, REF, app.release("orders", "dev", None, good), STRATEGY)
        else:
            assert state.phase.value == "succeeded", state.reason
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=6)
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    work = fresh_clone(root, root / ".pipeline" / "bench")
    app = App(root_hint=work)
    ctx = app.context("dev", NullSink())
    try:
        base = app.release("orders", "dev", None, "HEAD")
        ops.deploy(ctx, REF, base, STRATEGY)
        good = make_release(
            work, "bench/good", "good", lambda t: (t / "services/orders/NOTES").write_text("x\n")
        )
        bad = make_release(
            work,
            "bench/bad",
            "bad",
            lambda t: (t / "services/orders/fault.json").write_text(json.dumps({"error_rate": 0.5})),
        )
        rows = [_round(app, ctx, good, bad, args.workers) for _ in range(args.rounds)]
    finally:
        stop_plane(state_dir_of(work))
    print(f"orders canary 20% -> 50% -> 100% under {args.workers} keep-alive clients, {args.rounds} rounds")
    print(
        f"{'round':>5} {'good: failed/total':>19} {'bad: failed/total':>18} {'bound (to new slot)':>20} "
        f"{'reaction (engine)':>18} {'verdict->last fail':>19} {'exposure':>9}"
    )
    for i, r in enumerate(rows, 1):
        print(
            f"{i:5d} {int(r['good_failed']):>8d}/{int(r['good_requests']):<10d} "
            f"{int(r['bad_failed']):>7d}/{int(r['bad_requests']):<10d} {int(r['bad_to_new_slot']):>20d} "
            f"{r['reaction_engine_ms']:>15.1f} ms {r['verdict_to_last_failure_ms']:>16.1f} ms "
            f"{r['exposure_s']:>7.2f} s"
        )
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    share = med["bad_failed"] / med["bad_requests"] if med["bad_requests"] else 0.0
    print(
        f"median: bad canary failed {share:.2%} of requests "
        f"({med['bad_failed'] / max(med['bad_to_new_slot'], 1):.0%} of what reached the new slot), "
        f"good canary failed {int(med['good_failed'])}; engine reaction {med['reaction_engine_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
