"""Benchmark: the local router side by side with HAProxy, in front of the same replica.

    python bench/router.py [--duration 5] [--connections 32] [--threads 2] [--rounds 3]

Starts a real plane (in a temporary git project) with one replica of a small aiohttp
service and 100% of the environment's traffic on it, and an HAProxy (``haproxy -f cfg -db``,
config generated into the temporary folder) in front of the same replica. Then, alternating
over ``--rounds`` rounds, the same ``wrk`` workload (``wrk -t2 -c32 -d5s --latency``, keep-alive
connections, GET of a small JSON answer) runs against the replica directly, through the
router and through HAProxy. Prints each path's requests per second, p50 and p99 (median over
the rounds), the ratios router/direct, haproxy/direct and router/haproxy, and the CPU time
each proxy's process spent per request (user + system, all its threads: for the router the
whole plane process, span storing included), a figure that depends much less on how busy the
machine is than requests per second do.

The plane stores the router's spans once traffic is quiet (``pipeline.local.span_writer``):
after each router run the benchmark waits until they are all stored, counts that CPU time as
the run's, and starts the next run only then; the last line says how many spans were stored
and dropped. ``--duration`` beyond about six seconds at full speed (65,536 spans held back)
shows the router storing spans while traffic flows.

Needs ``wrk`` and ``haproxy`` on PATH (Debian packages of the same names). wrk, the plane,
the replica and HAProxy share this machine's cores, so the figures are relative, not
absolute. Everything started is stopped at the end.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from pipeline.core.model import Slot, Weights
from pipeline.local.adapters import LocalCompute, LocalRouter, ServiceBinding
from pipeline.local.plane.control_client import PlaneClient
from pipeline.local.plane.lifecycle import ensure_plane, plane_processes, stop_plane
from pipeline.local.registry import LocalRegistry
from pipeline.local.specs import HealthCheck, Launch, RouteSpec

APP = """
import os
from aiohttp import web

async def hello(request):
    return web.json_response({"ok": True})

app = web.Application()
app.router.add_get("/{tail:.*}", hello)
web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), print=None, access_log=None)
"""


def port_pair() -> int:
    """A port p with p and p + 1 free (the environment's main and test listeners)."""
    for _ in range(100):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise SystemExit("no two consecutive free ports on 127.0.0.1")


SERVICE_YAML = """\
name: hello
kind: ecs
owner: dev
paths: ["services/hello/**"]
build: {context: services/hello}
local: {command: python app.py}
ecs:
  container: hello
  port: 8000
  health_check: {path: /health}
  route: {path: "/*", priority: 1}
"""


def _project(root: Path) -> None:
    """A git repository with one service; the plane runs what its service.yaml says."""
    (root / "services" / "hello").mkdir(parents=True)
    (root / "services" / "hello" / "app.py").write_text(APP)
    (root / "services" / "hello" / "service.yaml").write_text(SERVICE_YAML)
    commit_all(root)


def commit_all(root: Path) -> None:
    """Make ``root`` a git repository whose one commit holds everything in it."""
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.email=b@example.com", "-c", "user.name=bench", "commit", "-q", "-m", "app"]):
        subprocess.run(["git", *args], cwd=root, check=True)


@dataclass(frozen=True, slots=True)
class Run:
    """One wrk run: requests per second and latency percentiles in milliseconds."""

    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float | None = None  # CPU time of the proxy's process per request (None: direct)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True, slots=True)
class WrkFigures:
    """What one wrk run printed: requests per second, p50 and p99 in milliseconds, the
    number of requests, and its error line (non-2xx answers or socket errors), if any."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: str | None


def wrk_figures(url: str, out: str) -> WrkFigures:
    """Parse ``wrk --latency`` output (shared by bench/edge.py and bench/tracing.py)."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    found = re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    cuts = {cut: float(number) * _UNITS[unit] for cut, number, unit in found}
    if rps is None or total is None or set(cuts) != {"50", "99"}:
        raise SystemExit(f"unexpected wrk output for {url}:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return WrkFigures(float(rps.group(1)), cuts["50"], cuts["99"], int(total.group(1)),
                      errors.group(0) if errors else None)


def _wrk(url: str, args: argparse.Namespace, duration: float, proxy: psutil.Process | None = None,
         settle: Callable[[], object] | None = None) -> Run:
    cpu_before = _cpu(proxy)
    out = subprocess.run(
        ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration:g}s", "--latency", url],
        check=True, capture_output=True, text=True,
    ).stdout
    if settle is not None:
        settle()  # the work the run left behind (spans held back) is counted as the run's
    cpu = _cpu(proxy) - cpu_before
    figures = wrk_figures(url, out)
    if figures.errors:
        print(f"warning: {url}: {figures.errors}", file=sys.stderr)
    cpu_us = cpu / max(1, figures.requests) * 1e6 if proxy is not None else None
    return Run(figures.rps, figures.p50_ms, figures.p99_ms, cpu_us)


def _cpu(proc: psutil.Process | None) -> float:
    """CPU seconds (user + system, all threads) ``proc`` has used so far; 0 without one."""
    if proc is None:
        return 0.0
    times = proc.cpu_times()
    return float(times.user + times.system)


HAPROXY_CFG = """\
global
    maxconn 4096
{threads}
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
frontend bench
    bind 127.0.0.1:{port}
    default_backend replica
backend replica
    http-reuse always
    server replica 127.0.0.1:{replica}
"""


@contextmanager
def _haproxy(folder: Path, replica_port: int, threads: int) -> Iterator[tuple[int, psutil.Process]]:
    """An HAProxy in front of the replica; yields its port and process."""
    port = port_pair()
    cfg = folder / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(port=port, replica=replica_port,
                                      threads=f"    nbthread {threads}" if threads else ""))
    proc = subprocess.Popen(["haproxy", "-f", str(cfg), "-db"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    why = proc.stderr.read() if proc.stderr else ""
                    raise SystemExit(f"haproxy did not start: {why}") from None
                time.sleep(0.05)
        yield port, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


# a URL, the proxy process whose CPU is counted, and what to wait for after each run
Target = tuple[str, "psutil.Process | None", "Callable[[], object] | None"]


def _measure(urls: dict[str, Target], args: argparse.Namespace) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {name: [] for name in urls}
    for url, _, settle in urls.values():  # warm up every path (connections, caches)
        _wrk(url, args, 1, settle=settle)
    for round_ in range(args.rounds):
        order = list(urls.items())
        if round_ % 2:
            order.reverse()  # alternate the order so no path always runs first
        for name, (url, proxy, settle) in order:
            runs[name].append(_wrk(url, args, args.duration, proxy, settle))
    return runs


def spans_stored(client: PlaneClient, timeout: float = 120.0) -> dict[str, int]:
    """Wait until the plane has stored the router's spans held back during a run (the span
    writer stores them once traffic is quiet); returns its counts (written, queued, dropped,
    held), or {} when the plane records no router spans (``PIPELINE_TRACING=off``). Shared
    by bench/tracing.py and bench/edge.py: no run starts while the plane is still storing."""
    deadline = time.monotonic() + timeout
    while True:
        stats = client.call("GET", "/v1/status").get("router_spans") or {}
        if not stats.get("queued"):
            return dict(stats)
        if time.monotonic() > deadline:
            raise SystemExit(f"the plane did not store its spans in {timeout:g} s: {stats}")
        time.sleep(0.05)


def _report(runs: dict[str, list[Run]], args: argparse.Namespace) -> None:
    med = {name: Run(statistics.median(r.rps for r in rs), statistics.median(r.p50_ms for r in rs),
                     statistics.median(r.p99_ms for r in rs), _median_cpu(rs)) for name, rs in runs.items()}
    print(f"router benchmark: wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency, "
          f"median of {args.rounds} alternated rounds")
    print(f"{'path':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11}")
    for name, m in med.items():
        cpu = f"{m.cpu_us:>11.0f}" if m.cpu_us is not None else f"{'-':>11}"
        print(f"{name:<8} {m.rps:>9.0f} {m.p50_ms:>8.2f} {m.p99_ms:>8.2f} {cpu}")
    d, r, h = med["direct"], med["router"], med["haproxy"]
    print(f"throughput: router/direct {r.rps / d.rps:.2f}, haproxy/direct {h.rps / d.rps:.2f}, "
          f"router/haproxy {r.rps / h.rps:.2f}")
    if r.cpu_us and h.cpu_us:
        print(f"CPU per request (the proxy's process, all threads): router {r.cpu_us:.0f} us, "
              f"haproxy {h.cpu_us:.0f} us, router/haproxy {r.cpu_us / h.cpu_us:.1f}")
    print(f"p99: router/haproxy {r.p99_ms / h.p99_ms:.2f} (router {r.p99_ms - d.p99_ms:+.2f} ms, "
          f"haproxy {h.p99_ms - d.p99_ms:+.2f} ms over direct)")


def _report_spans(stats: dict[str, int]) -> None:
    if not stats:
        print("router spans: not recorded (PIPELINE_TRACING=off)")
        return
    print(f"router spans: {stats['written']} stored, {stats['dropped']} dropped; each router run's "
          "CPU includes storing its spans after it (they wait while the router is busy)")


def _median_cpu(runs: list[Run]) -> float | None:
    values = [r.cpu_us for r in runs if r.cpu_us is not None]
    return statistics.median(values) if values else None


def _serve_replica(root: Path, state_dir: Path, info_url: str, token: str) -> tuple[int, int]:
    """Blue runs the bench service with 100%; returns (router port, replica port)."""
    port = port_pair()
    client = PlaneClient.for_url(info_url, token=token)
    binding = ServiceBinding("bench", port, "hello", RouteSpec("/*", 1))
    registry = LocalRegistry(root, state_dir)
    launch = Launch(command=(sys.executable, "app.py"), replicas=1,
                    health=HealthCheck(path="/health", interval=5.0))
    release = registry.resolve("hello")
    compute = LocalCompute(client, binding, launch, registry.snapshot_dir)
    compute.provision(Slot.BLUE, release)
    LocalRouter(client, binding).set_weights(Weights(100, 0))
    deadline = time.monotonic() + 30
    while not compute.health(Slot.BLUE, release).ready:
        if time.monotonic() > deadline:
            raise SystemExit("the benchmark replica did not become ready in 30 s")
        time.sleep(0.05)
    status = client.call("GET", "/v1/status")
    replica = status["environments"]["bench"]["services"]["hello"]["slots"]["blue"]["replicas"][0]
    return port, int(replica["port"])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--haproxy-threads", type=int, default=0, help="nbthread (0: HAProxy's default)")
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "haproxy") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"{' and '.join(missing)} not found: apt-get install wrk haproxy")
    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp:
        root = Path(tmp) / "project"
        _project(root)
        state_dir = root / ".pipeline"
        info, _ = ensure_plane(state_dir)
        try:
            port, replica_port = _serve_replica(root, state_dir, info.url, info.token)
            plane = psutil.Process(info.pid)
            client = PlaneClient.for_url(info.url, token=info.token)
            stored = lambda: spans_stored(client)  # noqa: E731
            with _haproxy(Path(tmp), replica_port, args.haproxy_threads) as (haproxy_port, haproxy):
                runs = _measure({"direct": (f"http://127.0.0.1:{replica_port}/hello", None, None),
                                 "router": (f"http://127.0.0.1:{port}/hello", plane, stored),
                                 "haproxy": (f"http://127.0.0.1:{haproxy_port}/hello", haproxy, None)}, args)
            _report(runs, args)
            _report_spans(spans_stored(client))
        finally:
            stop_plane(state_dir)
            assert plane_processes(info.id) == []
    return 0


if __name__ == "__main__":
    sys.exit(main())
