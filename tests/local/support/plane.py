"""Helpers of the local data plane tests: a git project with a tiny HTTP service, its
adapters, HTTP helpers and a load generator. The fixtures built on them live in conftest.

Everything binds 127.0.0.1 on free ports.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.local.adapters import LocalCompute, LocalMetrics, LocalRouter, ServiceBinding
from pipeline.local.plane.control_client import PlaneClient
from pipeline.local.plane.lifecycle import PlaneInfo, ensure_plane, plane_processes, state_dir_of, stop_plane
from pipeline.local.registry import LocalRegistry
from pipeline.local.specs import HealthCheck, Launch, RouteSpec
from tests.local.support.example import random_listener_port

APP = '''
"""A tiny service for the local plane tests: /health, /orders (version, pid, slot)."""
import json, os, random, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

VERSION = os.environ.get("PIPELINE_VERSION", "dev")
try:
    with open("fault.json") as f:
        ERROR_RATE = float(json.load(f).get("error_rate", 0))
except OSError:
    ERROR_RATE = 0.0


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlsplit(self.path)
        if url.path in ("/health", "/orders/health"):
            return self._send(200, {"ok": True})
        if url.path.startswith("/orders"):
            delay = float(parse_qs(url.query).get("ms", ["0"])[0]) / 1000
            time.sleep(delay)
            if random.random() < ERROR_RATE:
                return self._send(500, {"error": "injected fault", "version": VERSION})
            return self._send(200, {"version": VERSION, "pid": os.getpid(),
                                    "slot": os.environ.get("PIPELINE_SLOT")})
        return self._send(404, {"error": "not found"})

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True


Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''

SERVICE_YAML = """\
name: orders
kind: ecs
owner: dev
paths: ["services/orders/**"]
build: {context: services/orders}
local:
  command: python app.py
  replicas: 2
ecs:
  container: orders
  port: 8000
  health_check: {path: /health, interval: 5s, timeout: 2s, healthy_threshold: 2, unhealthy_threshold: 2}
  route: {path: "/orders*", priority: 10}
  deregistration_delay: 5s
deploy:
  strategy: canary
  steps:
    - set_weight: 20
    - pause: 1s
    - analyze: {}
    - set_weight: 50
    - pause: 1s
    - analyze: {}
  analysis: {interval: 1s, window: 2s, min_requests: 5}
  timeouts: {ready: 30s, verify: 10s, stage: 30s, poll: 0.2s}
"""


def free_port_pair() -> int:
    """A port p with p and p + 1 both free on 127.0.0.1 (main and test listener)."""
    for _ in range(200):
        port = random_listener_port()
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no pair of free ports")


def git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)
    return out.stdout.strip()


@dataclass
class Project:
    root: Path
    port: int
    commit: str

    @property
    def state_dir(self) -> Path:
        return state_dir_of(self.root)

    def commit_change(self, relpath: str, text: str, message: str) -> str:
        (self.root / relpath).write_text(text)
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message)
        return git(self.root, "rev-parse", "HEAD")

    def commit_launch(self, message: str, command: str, *, env: dict[str, str] | None = None,
                      cwd: str = ".", files: dict[str, str] | None = None) -> str:
        """Commit ``files`` (relative to services/orders) and a service.yaml whose ``local:``
        runs ``command`` in ``cwd`` with ``env``: the plane runs what the release's own
        service.yaml says, so a test changes what runs by committing it."""
        for name, text in (files or {}).items():
            (self.root / "services" / "orders" / name).write_text(text)
        return self.commit_change("services/orders/service.yaml",
                                  service_yaml(command, env=env, cwd=cwd), message)


def service_yaml(command: str, *, env: dict[str, str] | None = None, cwd: str = ".") -> str:
    """SERVICE_YAML with another ``local:`` section."""
    local = f"local:\n  command: {command}\n  cwd: {cwd}\n  env: {json.dumps(env or {})}\n"
    return SERVICE_YAML.replace("local:\n  command: python app.py\n", local)


@dataclass
class Adapters:
    compute: LocalCompute
    router: LocalRouter
    metrics: LocalMetrics
    registry: LocalRegistry
    client: PlaneClient
    binding: ServiceBinding

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.binding.port}"

    @property
    def test_url(self) -> str:
        return f"http://127.0.0.1:{self.binding.port + 1}"


def make_adapters(project: Project) -> Adapters:
    client = PlaneClient.for_state_dir(project.state_dir)
    binding = ServiceBinding("dev", project.port, "orders", RouteSpec("/orders*", 10))
    registry = LocalRegistry(project.root, project.state_dir)
    launch = Launch(command=("python", "app.py"), cwd="services/orders", replicas=2,
                    health=HealthCheck(path="/health", interval=1.0, timeout=1.0),
                    drain_timeout=5.0, stop_timeout=3.0)
    compute = LocalCompute(client, binding, launch, registry.snapshot_dir)
    router, metrics = LocalRouter(client, binding), LocalMetrics(client, binding)
    return Adapters(compute, router, metrics, registry, client, binding)


@contextmanager
def running_plane(project: Project) -> Iterator[PlaneInfo]:
    """The project's plane, started now (from this process's environment, which it inherits);
    on leaving, it is stopped and no process of it is left."""
    info, started = ensure_plane(project.state_dir)
    assert started
    try:
        yield info
    finally:
        stop_plane(project.state_dir)
        assert plane_processes(info.id) == []


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """One GET; (status, headers, body). Raises on connection errors."""
    parts = url.split("/", 3)
    host, port = parts[2].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", "/" + (parts[3] if len(parts) > 3 else ""), headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def version_of(body: bytes) -> str:
    return str(json.loads(body)["version"])


@dataclass
class Load:
    """Concurrent GET loops against one URL until ``stop()``; counts answers by slot."""

    url: str
    workers: int = 8
    statuses: Counter[int] = field(default_factory=Counter)
    slots: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        for _ in range(self.workers):
            thread = threading.Thread(target=self._loop, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                status, headers, _ = get(self.url)
                with self._lock:
                    self.statuses[status] += 1
                    self.slots[headers.get("x-pipeline-slot", "?")] += 1
                    if status >= 500:
                        self.failures.append(f"HTTP {status}")
            except OSError as exc:
                with self._lock:
                    self.failures.append(f"{type(exc).__name__}: {exc}")

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.statuses.values()) + len([f for f in self.failures if not f.startswith("HTTP")])

    def stop(self) -> Load:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self
