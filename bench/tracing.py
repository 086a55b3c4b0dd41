"""Benchmark: what tracing costs the local router, spans on vs off, side by side in one run.

    python bench/tracing.py [--duration 5] [--connections 32] [--threads 2] [--rounds 3]

Starts three real planes on one temporary git project, each with one replica of the same
small aiohttp service taking 100% of its environment's traffic: one records a span per
request into its span store (the default), one runs with ``PIPELINE_TRACING=off``, and one
samples a tenth of the traces (``OTEL_TRACES_SAMPLER=traceidratio``, ``..._ARG=0.1``).
Alternating over ``--rounds`` rounds, the same ``wrk`` workload (keep-alive connections, GET
of a small JSON answer, each with a ``traceparent`` of a new trace, as a traced caller sends) runs
against the replica directly and through each router. Prints each path's requests per
second, p50 and p99, the CPU time each plane process spent per request (median over the
rounds; a run's CPU includes storing its spans, which the plane holds back while the router
is busy: each run ends once they are stored), the differences to the untraced plane, and how
many spans the traced plane stored (proof that it recorded them).

Needs ``wrk`` on PATH. wrk, both planes and the replicas share this machine's cores, so the
figures are relative, not absolute. Everything started is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil
import router as router_bench  # bench/router.py: the project and its replica

from pipeline.local.plane.control_client import PlaneClient
from pipeline.local.plane.lifecycle import PlaneInfo, ensure_plane, plane_processes, stop_plane
from pipeline.local.spans import SpanStore

LUA = """\
-- a traced caller: every request carries a traceparent of its own (a new trace id)
local hex = "0123456789abcdef"
local function random_hex(n)
  local out = {}
  for i = 1, n do
    local r = math.random(1, 16)
    out[i] = hex:sub(r, r)
  end
  return table.concat(out)
end
request = function()
  wrk.headers["traceparent"] = "00-" .. random_hex(32) .. "-" .. random_hex(16) .. "-01"
  return wrk.format(nil)
end
"""
SAMPLED = {"PIPELINE_TRACING": "on", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}


def _plane(root: Path, name: str, environ: dict[str, str]) -> tuple[str, PlaneInfo, int, int]:
    """A plane in ``root/name`` started with ``environ`` added, serving the bench service;
    its folder, info, router port and replica port."""
    state_dir = root / name
    previous = {k: os.environ.get(k) for k in environ}
    os.environ.update(environ)  # the plane inherits them
    try:
        info, _ = ensure_plane(state_dir)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    port, replica = router_bench._serve_replica(root, state_dir, info.url, info.token)
    return str(state_dir), info, port, replica


@dataclass(frozen=True, slots=True)
class Result:
    """One wrk run: requests per second, latency percentiles (ms), and the CPU time the
    plane process (router, export thread, everything) spent per request, in microseconds:
    the figure that the other processes sharing the machine disturb least."""

    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float


def _cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


Path_ = tuple[str, "int | None", "PlaneClient | None"]  # URL, plane pid, the plane's control API


def _wrk(url: str, pid: int | None, client: PlaneClient | None, args: argparse.Namespace, duration: float,
         script: Path) -> Result:
    before = _cpu(pid)
    out = subprocess.run(
        ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration:g}s", "--latency",
         "-s", str(script), url], check=True, capture_output=True, text=True,
    ).stdout
    if client is not None:
        router_bench.spans_stored(client)  # the spans held back during the run: stored, and counted
    spent = _cpu(pid) - before
    figures = router_bench.wrk_figures(url, out)
    if figures.errors:
        print(f"warning: {url}: {figures.errors}", file=sys.stderr)
    return Result(figures.rps, figures.p50_ms, figures.p99_ms, spent * 1e6 / max(1, figures.requests))


def _measure(paths: dict[str, Path_], args: argparse.Namespace, script: Path) -> dict[str, list[Result]]:
    runs: dict[str, list[Result]] = {name: [] for name in paths}
    for url, pid, client in paths.values():
        _wrk(url, pid, client, args, 1, script)  # warm up every path
    for round_ in range(args.rounds):
        order = list(paths.items())
        if round_ % 2:
            order.reverse()
        for name, (url, pid, client) in order:
            runs[name].append(_wrk(url, pid, client, args, args.duration, script))
    return runs


def _report(runs: dict[str, list[Result]], args: argparse.Namespace, spans: int) -> None:
    med = {name: Result(*(statistics.median(getattr(r, f) for r in rs)
                          for f in ("rps", "p50_ms", "p99_ms", "cpu_us"))) for name, rs in runs.items()}
    print(f"tracing overhead: wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency "
          f"(a new traceparent per request), median of {args.rounds} alternated rounds")
    print(f"{'path':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'plane CPU us/req':>17}")
    for name, m in med.items():
        cpu = f"{m.cpu_us:>17.0f}" if name != "direct" else f"{'-':>17}"
        print(f"{name:<12} {m.rps:>9.0f} {m.p50_ms:>8.2f} {m.p99_ms:>8.2f} {cpu}")
    off = med["spans off"]
    for name in ("spans on", "sampled 10%"):
        on = med[name]
        print(f"{name} vs off: throughput {on.rps / off.rps:.2f}, p50 {on.p50_ms - off.p50_ms:+.2f} ms, "
              f"p99 {on.p99_ms - off.p99_ms:+.2f} ms, plane CPU {on.cpu_us - off.cpu_us:+.0f} us/request")
    print(f"spans stored by the traced plane: {spans}")


def _client(info: PlaneInfo) -> PlaneClient:
    return PlaneClient.for_url(info.url, token=info.token)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="bench-tracing-") as tmp:
        root = Path(tmp) / "project"
        router_bench._project(root)
        script = Path(tmp) / "traceparent.lua"
        script.write_text(LUA)
        started = []
        try:
            on_dir, on_info, on_port, replica = _plane(root, ".plane-on", {"PIPELINE_TRACING": "on"})
            started.append((on_dir, on_info))
            off_dir, off_info, off_port, _ = _plane(root, ".plane-off", {"PIPELINE_TRACING": "off"})
            started.append((off_dir, off_info))
            tenth_dir, tenth_info, tenth_port, _ = _plane(root, ".plane-10", SAMPLED)
            started.append((tenth_dir, tenth_info))
            url = "http://127.0.0.1:{}/hello".format
            runs = _measure({"direct": (url(replica), None, None),
                             "spans off": (url(off_port), off_info.pid, _client(off_info)),
                             "spans on": (url(on_port), on_info.pid, _client(on_info)),
                             "sampled 10%": (url(tenth_port), tenth_info.pid, _client(tenth_info))},
                            args, script)
            _report(runs, args, SpanStore.of(Path(on_dir)).count())
        finally:
            for state_dir, info in started:
                stop_plane(Path(state_dir))
                assert plane_processes(info.id) == []
    return 0


if __name__ == "__main__":
    sys.exit(main())
