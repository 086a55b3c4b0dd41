"""What tracing a deployment run costs: a canary on the in-memory fakes, spans off vs on.

    python bench/run_spans.py [--runs N]

Runs the same deployment (v1 stable on blue, then a 20% -> analyse -> 50% -> analyse canary
of v2 with 60-second pauses on a fake clock) ``--runs`` times each way, alternating:
  - off: no RunObserver (what the engine costs alone);
  - memory: spans recorded by the OpenTelemetry SDK into memory (what observing costs);
  - store: spans exported into a local span store (SQLite, batched, flushed as the run ends),
    as ``pipeline deploy`` does on the local platform.
Prints the median time per deployment and the spans per run. Figures depend on the machine
(the store's cost is mostly one disk sync per flush); compare them side by side.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipeline.core.analysis import AnalysisSpec
from pipeline.core.model import ServiceRef
from pipeline.core.plan import Strategy
from pipeline.core.ports import RunObserver
from pipeline.core.state import Timeouts
from pipeline.core.steps import Analyze, Pause, SetWeight, canary
from pipeline.local.span_export import StoreExporter
from pipeline.local.spans import SpanStore
from pipeline.observe.setup import run_tracer
from pipeline.observe.spans import RunTracer
from pipeline.operations import Context, deploy
from pipeline.testing import CollectingSink, FakeClock, FakePlatform, InMemoryStore, release

REF = ServiceRef("orders", "bench")
STRATEGY = Strategy(
    steps=canary((SetWeight(20), Pause(60), Analyze(), SetWeight(50), Pause(60), Analyze())),
    analysis=AnalysisSpec(min_requests=10),
    timeouts=Timeouts(ready=60, verify=10, stage=60, hold=600, poll=1),
)


def _context(clock: FakeClock) -> Context:
    store, platform = InMemoryStore(clock), FakePlatform.create()
    ctx = Context(store=store, locks=store, clock=clock, sink=CollectingSink(),
                  platform_for=lambda ref: platform.ports(), actor="bench", owner="bench@host:1")
    deploy(ctx, REF, release("v1"), STRATEGY)
    return ctx


def _observer(
    kind: str, clock: FakeClock, folder: Path
) -> tuple[RunObserver | None, InMemorySpanExporter | None]:
    if kind == "memory":
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return RunTracer(provider.get_tracer("bench"), clock), exporter
    if kind == "store":
        return run_tracer(clock, exporters=[StoreExporter(SpanStore.of(folder))], environ={}), None
    return None, None


def once(kind: str, folder: Path) -> tuple[float, int]:
    clock = FakeClock()
    ctx = _context(clock)
    observer, exporter = _observer(kind, clock, folder)
    ctx = replace(ctx, observer=observer)
    started = time.perf_counter()
    deploy(ctx, REF, release("v2"), STRATEGY)
    elapsed = time.perf_counter() - started
    return elapsed, len(exporter.get_finished_spans()) if exporter is not None else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    kinds = ("off", "memory", "store")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    spans = 0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for kind in kinds:
                elapsed, count = once(kind, Path(tmp) / kind)
                times[kind].append(elapsed)
                spans = max(spans, count)
    print(f"canary deployment on the fakes, {args.runs} runs each, {spans} spans per run")
    base = statistics.median(times["off"])
    for kind in kinds:
        median = statistics.median(times[kind])
        print(f"  {kind:6s}  {median * 1000:7.1f} ms per deployment  ({(median - base) * 1000:+.1f} ms)")


if __name__ == "__main__":
    main()
