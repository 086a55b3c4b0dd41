"""Benchmark: what the local router adds on top of a replica, measured side by side.

    python bench/router.py [--requests 3000] [--concurrency 32] [--rounds 3]

Starts a real plane (in a temporary git project) with one replica of a small aiohttp
service, sets 100% to it, then alternates the same workload against the replica directly
and through the environment's router (loopback only, bounded request counts):

- latency: one request at a time, p50 and p99 in milliseconds; the router's added latency
  is the difference;
- throughput: ``--concurrency`` requests in flight, requests per second.

Each figure is the median over ``--rounds`` alternated rounds. The client, the plane and
the replica share this machine's cores, so figures are relative, not absolute. Everything
started is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

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


def _port_pair() -> int:
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
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.email=b@example.com", "-c", "user.name=bench", "commit", "-q", "-m", "app"]):
        subprocess.run(["git", *args], cwd=root, check=True)


async def _latency(session: aiohttp.ClientSession, url: str, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        async with session.get(url) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        samples.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


async def _throughput(session: aiohttp.ClientSession, url: str, n: int, concurrency: int) -> float:
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with session.get(url) as resp:
                await resp.read()
                assert resp.status == 200, resp.status

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


async def _measure(direct: str, routed: str, args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    figures: dict[str, dict[str, list[float]]] = {
        name: {"p50": [], "p99": [], "rps": []} for name in ("direct", "router")
    }
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for url in (direct, routed):  # warm up both paths
            await _latency(session, url, 200)
        for _ in range(args.rounds):
            for name, url in (("direct", direct), ("router", routed)):
                p50, p99 = await _latency(session, url, args.requests // 3)
                figures[name]["p50"].append(p50)
                figures[name]["p99"].append(p99)
                figures[name]["rps"].append(await _throughput(session, url, args.requests, args.concurrency))
    return figures


def _report(figures: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    med = {name: {k: statistics.median(v) for k, v in f.items()} for name, f in figures.items()}
    d, r = med["direct"], med["router"]
    print(f"local router benchmark: {args.rounds} rounds, {args.requests // 3} sequential requests "
          f"(latency) and {args.requests} at concurrency {args.concurrency} (throughput) per path")
    print(f"{'path':<8} {'p50 ms':>8} {'p99 ms':>8} {'max rps':>9}")
    for name, m in (("direct", d), ("router", r)):
        print(f"{name:<8} {m['p50']:>8.3f} {m['p99']:>8.3f} {m['rps']:>9.0f}")
    print(f"added by the router: p50 +{r['p50'] - d['p50']:.3f} ms, p99 +{r['p99'] - d['p99']:.3f} ms; "
          f"throughput ratio router/direct {r['rps'] / d['rps']:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp:
        root = Path(tmp) / "project"
        _project(root)
        state_dir = root / ".pipeline"
        info, _ = ensure_plane(state_dir)
        try:
            port = _port_pair()
            client = PlaneClient.for_url(info.url, token=info.token)
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
            figures = asyncio.run(_measure(f"http://127.0.0.1:{replica['port']}/hello",
                                           f"http://127.0.0.1:{port}/hello", args))
            _report(figures, args)
        finally:
            stop_plane(state_dir)
            assert plane_processes(info.id) == []
    return 0


if __name__ == "__main__":
    sys.exit(main())
