"""Benchmark: what the local edge adds to the router, and a cache hit against a miss.

    python bench/edge.py [--duration 5] [--connections 32] [--threads 2] [--rounds 3]

Starts a real plane (in a temporary git project) with three services on one environment,
each one replica of the same small aiohttp app: ``plain`` (no ``api:`` rules), ``keyed``
(keys required, a usage plan too large to throttle, an allow and a deny CIDR list, no
cache) and ``cached`` (the same rules and a GET cache keyed by the ``c`` query parameter).
Then, alternating over ``--rounds`` rounds, the same ``wrk`` workload (keep-alive, GET of
a small JSON answer, ``x-api-key`` sent) runs against:

    direct     the ``plain`` replica itself
    edge off   the router in front of ``plain``
    edge on    the router in front of ``keyed``: key lookup (HMAC), CIDR, token bucket
    miss       ``cached`` with a random ``c`` per request (a wrk Lua script): every
               request is a miss, forwarded and stored
    hit        ``cached`` with ``c=1``: answered from the cache

Every path has the same shape (``?c=...``). Prints each path's requests per second, p50
and p99 (median over the rounds) and the ratios edge on/off and hit/miss. Needs ``wrk`` on
PATH. wrk, the plane and the replicas share this machine's cores: the figures are
relative, not absolute.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import router as router_bench  # bench/router.py: the replica, free ports, wrk's figures

from pipeline.core.model import Slot, Weights
from pipeline.local.adapters import LocalCompute, LocalRouter, PlaneService, ServiceBinding
from pipeline.local.plane.control_client import PlaneClient
from pipeline.local.plane.lifecycle import ensure_plane, plane_processes, stop_plane
from pipeline.local.registry import LocalRegistry
from pipeline.local.specs import HealthCheck, Launch, RouteSpec

SERVICES = ("plain", "keyed", "cached")
RULES = {
    "keys": "required", "default_plan": "big", "plans": {"big": {"rate": 1e9, "burst": 10**9, "quota": None}},
    "allow": ["127.0.0.0/8"], "deny": ["10.0.0.0/8"], "cache": None,
}
CACHE = {"ttl": 3600.0, "headers": [], "query": ["c"], "methods": ["GET"], "invalidate_on_deploy": True}
RANDOM_QUERY = """\
-- wrk: a cache key never sent before for every request: this run's start second, the thread
-- and a counter (the threads' random generators would share a seed, and runs their counters)
local threads = 0
local run = os.time()
function setup(thread) threads = threads + 1; thread:set("id", run .. "-" .. threads) end
local n = 0
function request() n = n + 1; return wrk.format("GET", "/cached?c=" .. id .. "-" .. n) end
"""


def _project(root: Path) -> None:
    for name in SERVICES:
        folder = root / "services" / name
        folder.mkdir(parents=True)
        (folder / "app.py").write_text(router_bench.APP)
        (folder / "service.yaml").write_text(
            f"name: {name}\nkind: ecs\nowner: dev\npaths: [\"services/{name}/**\"]\n"
            f"build: {{context: services/{name}}}\nlocal: {{command: python app.py}}\n"
            f"ecs: {{container: {name}, port: 8000, health_check: {{path: /health}}, "
            f"route: {{path: \"/{name}*\", priority: {SERVICES.index(name) + 1}}}}}\n")
    router_bench.commit_all(root)


Run = router_bench.Run  # one wrk run: req/s, p50 and p99 (ms)


def _wrk(url: str, extra: list[str], args: argparse.Namespace, duration: float,
         client: PlaneClient) -> Run:
    out = subprocess.run(
        ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration:g}s", "--latency", *extra, url],
        check=True, capture_output=True, text=True,
    ).stdout
    router_bench.spans_stored(client)  # no run starts while the plane stores the last one's spans
    figures = router_bench.wrk_figures(url, out)
    if figures.errors:
        raise SystemExit(f"{url}: {figures.errors}: the figures would not be of answered requests")
    return Run(figures.rps, figures.p50_ms, figures.p99_ms)


@dataclass(frozen=True, slots=True)
class Served:
    port: int
    replica: int
    secrets: dict[str, str]


def _serve(root: Path, state_dir: Path, client: PlaneClient) -> Served:
    """Every service on env ``bench`` with 100% on blue, the edges, a key per edge."""
    port = router_bench.port_pair()
    registry = LocalRegistry(root, state_dir)
    secrets: dict[str, str] = {}
    for index, name in enumerate(SERVICES):
        binding = ServiceBinding("bench", port, name, RouteSpec(f"/{name}*", index + 1))
        launch = Launch(command=(sys.executable, "app.py"), cwd=f"services/{name}", replicas=1,
                        health=HealthCheck(path="/health", interval=5.0))
        release = registry.resolve(name)
        compute = LocalCompute(client, binding, launch, registry.snapshot_dir)
        compute.provision(Slot.BLUE, release)
        LocalRouter(client, binding).set_weights(Weights(100, 0))
        deadline = time.monotonic() + 30
        while not compute.health(Slot.BLUE, release).ready:
            if time.monotonic() > deadline:
                raise SystemExit(f"the {name} replica did not become ready in 30 s")
            time.sleep(0.05)
        if name != "plain":
            service = PlaneService(client, binding)
            service.call("PUT", "/edge", {**RULES, "cache": CACHE if name == "cached" else None})
            secrets[name] = str(service.call("POST", "/keys", {"name": "bench", "plan": None})["secret"])
    status = client.call("GET", "/v1/status")
    replica = status["environments"]["bench"]["services"]["plain"]["slots"]["blue"]["replicas"][0]
    return Served(port, int(replica["port"]), secrets)


def _measure(paths: dict[str, tuple[str, list[str]]], args: argparse.Namespace,
             client: PlaneClient) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {name: [] for name in paths}
    for url, extra in paths.values():  # warm up every path (connections, the cache)
        _wrk(url, extra, args, 1, client)
    for round_ in range(args.rounds):
        order = list(paths.items())
        if round_ % 2:
            order.reverse()  # alternate the order so no path always runs first
        for name, (url, extra) in order:
            runs[name].append(_wrk(url, extra, args, args.duration, client))
    return runs


def _report(runs: dict[str, list[Run]], args: argparse.Namespace) -> None:
    med = {name: Run(statistics.median(r.rps for r in rs), statistics.median(r.p50_ms for r in rs),
                     statistics.median(r.p99_ms for r in rs)) for name, rs in runs.items()}
    print(f"edge benchmark: wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency, "
          f"median of {args.rounds} alternated rounds")
    print(f"{'path':<9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, m in med.items():
        print(f"{name:<9} {m.rps:>9.0f} {m.p50_ms:>8.2f} {m.p99_ms:>8.2f}")
    off, on, miss, hit = med["edge off"], med["edge on"], med["miss"], med["hit"]
    print(f"edge on/off: throughput {on.rps / off.rps:.2f}, p50 {on.p50_ms / off.p50_ms:.2f}, "
          f"p99 {on.p99_ms / off.p99_ms:.2f}")
    print(f"hit/miss: throughput {hit.rps / miss.rps:.2f}, p50 {hit.p50_ms / miss.p50_ms:.2f}, "
          f"p99 {hit.p99_ms / miss.p99_ms:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="bench-edge-") as tmp:
        root = Path(tmp) / "project"
        _project(root)
        script = Path(tmp) / "random.lua"
        script.write_text(RANDOM_QUERY)
        state_dir = root / ".pipeline"
        info, _ = ensure_plane(state_dir)
        try:
            client = PlaneClient.for_url(info.url, token=info.token)
            served = _serve(root, state_dir, client)
            started = time.time()
            base = f"http://127.0.0.1:{served.port}"
            keyed = ["-H", f"x-api-key: {served.secrets['keyed']}"]
            cached = ["-H", f"x-api-key: {served.secrets['cached']}"]
            runs = _measure({
                "direct": (f"http://127.0.0.1:{served.replica}/plain?c=1", []),
                "edge off": (f"{base}/plain?c=1", []),
                "edge on": (f"{base}/keyed?c=1", keyed),
                "miss": (f"{base}/cached", [*cached, "-s", str(script)]),
                "hit": (f"{base}/cached?c=1", cached),
            }, args, client)
            _report(runs, args)
            counts = client.call("GET", "/v1/envs/bench/services/cached/edge/counts",
                                 query={"since": repr(started), "until": repr(time.time() + 1)})
            total = counts["keys"].get("bench", {})
            print(f"cached route over the run (edge counters): {total.get('hits', 0)} hits, "
                  f"{total.get('misses', 0)} misses")
        finally:
            stop_plane(state_dir)
            assert plane_processes(info.id) == []
    return 0


if __name__ == "__main__":
    sys.exit(main())
