"""The local edge: real requests through the router for every ``api:`` rule.

One plane and one ``orders`` replica for the module. The replica counts the requests that
reach it, so a cache hit is proven by the count not moving. Source addresses are other
loopback addresses (127.0.0.0/8 is all local): the edge sees the TCP peer.
"""

from __future__ import annotations

import http.client
import io
import json
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.app import App
from pipeline.cli.main import main
from pipeline.core.model import Release, Slot, Weights
from pipeline.core.ports import Platform
from pipeline.local.api_keys import LocalApiKeys
from pipeline.local.lambda_.control_client import LambdaControlClient
from pipeline.local.plane.control_client import PlaneClient
from pipeline.local.plane.lifecycle import ensure_plane, plane_processes, stop_plane
from tests.local.support.plane import free_port_pair, git, wait_until

COUNTING_APP = '''
import itertools, json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEEN = itertools.count(1)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        n = 0 if self.path == "/health" else next(SEEN)
        data = json.dumps({"n": n, "slot": os.environ.get("PIPELINE_SLOT")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''

SERVICE = """\
name: orders
kind: ecs
owner: dev
paths: ["services/orders/**"]
build: {context: services/orders}
local: {command: python app.py, replicas: 1}
ecs:
  container: orders
  port: 8000
  health_check: {path: /health, interval: 5s, timeout: 2s}
  route: {path: "/orders*", priority: 10}
api:
  keys: required
  default_plan: std
  plans:
    std: {rate: 1000/s, burst: 1000, keys: [acme, globex]}
    tiny: {rate: 1/m, burst: 2}
    daily: {rate: 1000/s, burst: 1000, quota: 3/day}
  allow_cidrs: [127.0.0.1/32, 127.0.0.2/32]
  deny_cidrs: [127.0.0.2/32]
  cache: {ttl: 2s, key: {query: [page]}, methods: [GET]}
"""


@dataclass
class Edge:
    root: Path
    port: int
    app: App
    platform: Platform
    keys: LocalApiKeys
    release: Release

    def get(self, path: str, key: str | None = None, source: str = "127.0.0.1",
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], dict[str, object]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10, source_address=(source, 0))
        try:
            conn.request("GET", path, headers={**(headers or {}), **({"x-api-key": key} if key else {})})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read() or b"{}")
        finally:
            conn.close()

    def secret(self, name: str, plan: str | None = None) -> str:
        return self.keys.create("orders", name, plan).secret

    def ready(self, slot: Slot) -> None:
        wait_until(lambda: self.platform.compute.health(slot, self.release).ready, 30, f"{slot.value} ready")


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    root = tmp_path_factory.mktemp("edge") / "repo"
    (root / "services" / "orders").mkdir(parents=True)
    port = free_port_pair()
    (root / "pipeline.yaml").write_text(textwrap.dedent(f"""\
        project: shop
        organisations: {{dev: {{members: []}}}}
        environments:
          dev: {{platform: local, owner: dev, local: {{port: {port}}}}}
        """))
    (root / ".gitignore").write_text(".pipeline/\n")
    (root / "services" / "orders" / "app.py").write_text(COUNTING_APP)
    (root / "services" / "orders" / "service.yaml").write_text(SERVICE)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "orders")
    state_dir = root / ".pipeline"
    info, _ = ensure_plane(state_dir)
    try:
        app = App(root)
        env = app.environment("dev")
        factory = app.factory(env)
        platform = factory.platform(env, app.project.service("orders"))  # registers the edge
        release = app.registry("dev").resolve("orders", "HEAD")
        found = Edge(root, port, app, platform, factory.api_keys(env), release)
        platform.compute.provision(Slot.BLUE, release)
        found.ready(Slot.BLUE)
        platform.router.set_weights(Weights(blue=100, green=0))
        yield found
    finally:
        stop_plane(state_dir)
        assert plane_processes(info.id) == []


def test_requests_without_a_valid_key_are_refused_before_the_service(edge: Edge) -> None:
    good = edge.secret("client-a")

    assert edge.get("/orders")[0] == 403
    assert edge.get("/orders", key="not-a-key")[0] == 403
    status, _, body = edge.get("/orders/x", key=good)
    assert status == 200 and body["slot"] == "blue"
    revoked = edge.secret("client-b")
    assert edge.get("/orders/y", key=revoked)[0] == 200
    edge.keys.revoke("orders", "client-b")
    status, _, body = edge.get("/orders/y", key=revoked)
    assert status == 403 and "revoked" in str(body["message"])


def test_a_key_over_its_rate_gets_429_with_retry_after(edge: Edge) -> None:
    key = edge.secret("tiny-one", "tiny")  # 1 per minute, bucket of 2

    assert [edge.get(f"/orders/r{i}", key=key)[0] for i in range(2)] == [200, 200]
    status, headers, _ = edge.get("/orders/r3", key=key)
    assert status == 429
    assert 55 <= int(headers["retry-after"]) <= 60  # a token comes back within a minute


def test_a_key_over_its_daily_quota_gets_429_until_the_next_utc_day(edge: Edge) -> None:
    key = edge.secret("daily-one", "daily")  # 3 per day

    assert [edge.get(f"/orders/q{i}", key=key)[0] for i in range(3)] == [200, 200, 200]
    status, headers, body = edge.get("/orders/q4", key=key)
    now = time.time()
    assert status == 429 and "quota" in str(body["message"])
    to_midnight = 86400 - now % 86400
    assert abs(int(headers["retry-after"]) - to_midnight) <= 5


def test_cidr_lists_judge_the_real_peer_address_and_deny_wins(edge: Edge) -> None:
    key = edge.secret("cidr-one")

    assert edge.get("/orders/c", key=key, source="127.0.0.1")[0] == 200  # allowed
    assert edge.get("/orders/c", key=key, source="127.0.0.2")[0] == 403  # allowed, but denied
    assert edge.get("/orders/c", key=key, source="127.0.0.3")[0] == 403  # not on the allow list
    spoofed = edge.get("/orders/c", key=key, source="127.0.0.3", headers={"X-Forwarded-For": "127.0.0.1"})
    assert spoofed[0] == 403  # a header naming an allowed address changes nothing


def test_get_answers_are_cached_per_key_within_the_ttl(edge: Edge) -> None:
    key = edge.secret("cache-one")

    status, headers, first = edge.get("/orders/list?page=1", key=key)
    assert status == 200 and headers["x-cache"] == "miss"
    _, headers, again = edge.get("/orders/list?page=1&other=x", key=key)  # other params: same key
    assert headers["x-cache"] == "hit" and again["n"] == first["n"]  # the replica was not called
    _, headers, page2 = edge.get("/orders/list?page=2", key=key)
    assert headers["x-cache"] == "miss" and page2["n"] == int(str(first["n"])) + 1
    time.sleep(2.1)  # the TTL
    _, headers, later = edge.get("/orders/list?page=1", key=key)
    assert headers["x-cache"] == "miss" and later["n"] == int(str(page2["n"])) + 1


def test_a_deployment_empties_the_cache_of_the_route(edge: Edge) -> None:
    key = edge.secret("deploy-one")
    assert edge.get("/orders/d", key=key)[1]["x-cache"] == "miss"
    assert edge.get("/orders/d", key=key)[1]["x-cache"] == "hit"

    edge.platform.compute.provision(Slot.GREEN, edge.release)  # a release provisioned for the route
    assert edge.get("/orders/d", key=key)[1]["x-cache"] == "miss"
    assert edge.get("/orders/d", key=key)[1]["x-cache"] == "hit"
    edge.ready(Slot.GREEN)
    edge.platform.router.set_weights(Weights(blue=0, green=100))  # new weights
    status, headers, body = edge.get("/orders/d", key=key)
    assert status == 200 and headers["x-cache"] == "miss" and body["slot"] == "green"


def test_a_lambda_deployment_empties_the_cache_of_its_route(edge: Edge) -> None:
    """A Lambda route deploys in the runtime's API (version published, alias weights set):
    the plane sees it succeed there. Function ``dev_orders`` is what a Lambda ``orders`` in
    ``dev`` would be, so its deployment concerns this route."""
    key = edge.secret("lambda-one")
    client = PlaneClient.for_state_dir(edge.root / ".pipeline")
    lambda_api = LambdaControlClient(f"{client.base_url}/lambda/", token=client.token)
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return {'statusCode': 200}\n")
    assert edge.get("/orders/l", key=key)[1]["x-cache"] == "miss"
    assert edge.get("/orders/l", key=key)[1]["x-cache"] == "hit"

    version = lambda_api.publish("dev_orders", package.getvalue(), "handler.handle", 128, 3.0, {})
    assert edge.get("/orders/l", key=key)[1]["x-cache"] == "miss"
    assert edge.get("/orders/l", key=key)[1]["x-cache"] == "hit"
    lambda_api.set_alias("dev_orders", "live", {str(version["version"]): 1.0})
    assert edge.get("/orders/l", key=key)[1]["x-cache"] == "miss"


def test_counters_per_key_say_what_the_edge_did(edge: Edge) -> None:
    since = time.time()
    key = edge.secret("counted")
    edge.get("/orders/k", key=key)
    edge.get("/orders/k", key=key)
    edge.get("/orders/k", key=key, source="127.0.0.3")
    edge.get("/orders/k")

    counts = {c.key: c for c in edge.keys.counts("orders", since, time.time() + 1)}
    assert (counts["counted"].misses, counts["counted"].hits, counts["counted"].denied) == (1, 1, 1)
    assert counts["counted"].hit_ratio == 0.5
    assert counts[""].denied >= 1
    # the Metrics port: every key's counts of the same window (whole seconds: earlier tests too)
    figures = dict(edge.platform.metrics.measure(Slot.BLUE, since, time.time() + 1).extra)
    hits, misses = sum(c.hits for c in counts.values()), sum(c.misses for c in counts.values())
    assert (figures["edge_cache_hits"], figures["edge_cache_misses"]) == (hits, misses)
    assert figures["edge_denied"] == sum(c.denied for c in counts.values()) >= 2
    assert figures["edge_cache_hit_ratio"] == hits / (hits + misses)


def test_the_keys_command_shows_the_secret_once_and_revokes_at_once(edge: Edge) -> None:
    def pipeline(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pipeline.cli.main", "--root", str(edge.root), *args],
                              capture_output=True, text=True, timeout=60, check=False)

    created = pipeline("keys", "create", "orders", "--env", "dev", "--name", "cli-key", "--plan", "std")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert len(secret) == 40 and edge.get("/orders/cli", key=secret)[0] == 200

    listed = pipeline("keys", "list", "orders", "--env", "dev", "--json")
    entry = next(k for k in json.loads(listed.stdout) if k["name"] == "cli-key")
    assert entry["hint"] == secret[:4] and entry["plan"] == "std" and entry["revoked"] is None
    assert secret not in listed.stdout
    stored = (edge.root / ".pipeline" / "edge-keys.json").read_text()
    assert secret not in stored and "cli-key" in stored  # hashed at rest

    revoked = pipeline("keys", "revoke", "orders", "--env", "dev", "--name", "cli-key")
    assert revoked.returncode == 0, revoked.stderr
    assert edge.get("/orders/cli", key=secret)[0] == 403

    unknown = pipeline("keys", "create", "orders", "--env", "dev", "--plan", "gold")
    assert unknown.returncode == 2 and "no usage plan 'gold'" in unknown.stderr


def test_declared_keys_are_listed_until_issued_then_issued_once_on_their_plan(
    edge: Edge, capsys: pytest.CaptureFixture[str]
) -> None:
    root = ["--root", str(edge.root)]
    assert main([*root, "keys", "list", "orders", "--env", "dev", "--json"]) == 0
    pending = [k for k in json.loads(capsys.readouterr().out) if not k["issued"]]
    assert [(k["name"], k["plan"], k["declared"]) for k in pending] == [
        ("acme", "std", True), ("globex", "std", True)]

    assert main([*root, "keys", "create", "orders", "--env", "dev", "--name", "acme", "--plan", "tiny"]) == 2
    assert "declared on plan std, not tiny" in capsys.readouterr().err
    assert main([*root, "keys", "create", "orders", "--env", "dev", "--declared"]) == 0
    issued = dict(line.split(" ") for line in capsys.readouterr().out.splitlines())
    assert sorted(issued) == ["acme", "globex"] and edge.get("/orders/declared", key=issued["acme"])[0] == 200

    assert main([*root, "keys", "create", "orders", "--env", "dev", "--declared"]) == 0  # again: nothing new
    again = capsys.readouterr()
    assert again.out == "" and "issued already" in again.err
    edge.keys.revoke("orders", "globex")
    assert main([*root, "keys", "create", "orders", "--env", "dev", "--declared"]) == 0  # revoked stays so
    revoked = capsys.readouterr()
    assert revoked.out == "" and "declared key globex of orders in dev is revoked and stays so" in revoked.err
    assert main([*root, "keys", "list", "orders", "--env", "dev"]) == 0
    table = capsys.readouterr().out
    assert all(secret not in table for secret in issued.values())
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert rows["acme"][1:3] == ["std", "declared"] and rows["globex"][1:3] == ["std", "declared"]
    assert all(row[2] == "ad-hoc" for name, row in rows.items() if name not in issued)


def test_the_edges_own_answers_are_traced_by_the_router(edge: Edge) -> None:
    """A refusal (403), a throttle (429) and a cache hit each leave a router span of their
    own trace (the caller's traceparent), with the status, throttle and cache verdict."""
    from pipeline.local.spans import SpanStore

    key = edge.secret("traced", "tiny")  # 1 per minute, bucket of 2
    caller = "00-{}-00f067aa0ba902b7-01"
    traces = {name: f"{n:032x}" for n, name in enumerate(("refused", "miss", "hit", "throttled"), start=7)}
    assert edge.get("/orders/t", headers={"traceparent": caller.format(traces["refused"])})[0] == 403
    for name in ("miss", "hit", "throttled"):
        edge.get("/orders/t", key=key, headers={"traceparent": caller.format(traces[name])})
    store = SpanStore.of(edge.root / ".pipeline")

    def router_span(name: str) -> dict[str, object]:
        spans = [s for s in store.trace(traces[name]) if s.service == "router"]
        return spans[0].attributes if spans else {}

    wait_until(lambda: all(router_span(name) for name in traces), 15, "the router's spans")
    assert router_span("refused")["http.response.status_code"] == 403
    miss = router_span("miss")
    assert miss["http.response.status_code"] == 200 and miss["pipeline.slot"] in ("blue", "green")
    assert router_span("hit")["pipeline.cache"] == "hit"
    throttled = router_span("throttled")
    assert throttled["http.response.status_code"] == 429 and throttled["pipeline.throttled"] is True
