"""The engine's own overhead, measured with the in-memory fakes and with the SQLite store.

    python bench/engine.py [--runs N]

Prints, for a 5-step canary with zero pauses (set 20 -> analyse -> set 50 -> analyse ->
set 80, then promote): the time per deployment and per action for
  - baseline: the same port calls made directly in a loop (no engine, no persistence),
  - engine + in-memory store (transition, history, signal checks),
  - engine + SQLite store (a durable commit after every action, as in real runs),
and the ratios against the baseline. Figures are machine-dependent; compare ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.core.model import ServiceRef, Slot, Weights
from pipeline.core.plan import Strategy
from pipeline.core.state import Timeouts
from pipeline.core.steps import Analyze, SetWeight, canary
from pipeline.engine import NullSink
from pipeline.local.state.sqlite_store import open_sqlite
from pipeline.operations import Context, deploy
from pipeline.testing import FakeClock, FakePlatform, InMemoryStore, release

STRATEGY = Strategy(
    steps=canary((SetWeight(20), Analyze(), SetWeight(50), Analyze(), SetWeight(80))),
    timeouts=Timeouts(poll=0.0),
)
REF = ServiceRef("orders", "bench")


def _context(sqlite_dir: Path | None) -> tuple[Context, FakePlatform]:
    clock = FakeClock()
    platform = FakePlatform.create()
    if sqlite_dir is None:
        mem = InMemoryStore(clock)
        store, locks = mem, mem
    else:
        store, locks = open_sqlite(sqlite_dir / "state.db", clock)  # type: ignore[assignment]
    ctx = Context(
        store=store, locks=locks, clock=clock, sink=NullSink(),
        platform_for=lambda ref: platform.ports(), actor="bench", owner="bench@host:1",
    )
    return ctx, platform


def _one_engine_run(sqlite: bool) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        ctx, platform = _context(Path(tmp) if sqlite else None)
        deploy(ctx, REF, release("v1"), STRATEGY)  # first release: blue
        platform.log.calls.clear()
        start = time.perf_counter()
        state = deploy(ctx, REF, release("v2"), STRATEGY)
        elapsed = time.perf_counter() - start
        assert state.phase.value == "succeeded", state.reason
        return elapsed, len(platform.log.calls)


def _one_baseline_run() -> tuple[float, int]:
    """The same port calls, made directly: what any deploy script must at least do."""
    platform = FakePlatform.create()
    p, v2 = platform, release("v2")
    start = time.perf_counter()
    p.compute.provision(Slot.GREEN, v2)
    p.compute.health(Slot.GREEN, v2)
    p.stages.run("test", p.compute.endpoint(Slot.GREEN), 60)
    for percent, analyse in ((20, True), (50, True), (80, False), (100, False)):
        p.router.set_weights(Weights.split(Slot.GREEN, percent))
        p.router.get_weights()
        if analyse:
            p.metrics.measure(Slot.GREEN, 0, 1)
            p.metrics.measure(Slot.BLUE, 0, 1)
    p.compute.scale_down(Slot.BLUE)
    return time.perf_counter() - start, len(p.log.calls)


def _measure(name: str, run: Callable[[], tuple[float, int]], runs: int) -> tuple[str, float, int]:
    samples = [run() for _ in range(runs)]
    return name, statistics.median(s[0] for s in samples), samples[0][1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    rows = [
        _measure("baseline: port calls only", _one_baseline_run, args.runs),
        _measure("engine + in-memory store", lambda: _one_engine_run(False), args.runs),
        _measure("engine + SQLite store", lambda: _one_engine_run(True), max(5, args.runs // 3)),
    ]
    base = rows[0][1]
    print(f"5-step canary with zero pauses, median of {args.runs} runs (SQLite: {max(5, args.runs // 3)})")
    print(f"{'variant':28} {'per deployment':>15} {'actions':>8} {'per action':>11} {'vs baseline':>12}")
    for name, seconds, actions in rows:
        print(
            f"{name:28} {seconds * 1e3:12.3f} ms {actions:8d} {seconds / actions * 1e6:8.1f} us "
            f"{seconds / base:11.1f}x"
        )


if __name__ == "__main__":
    main()
