"""A chain of two Lambda functions for the local tests: ``front`` calls ``back`` through the
environment's router (``ROUTER`` in its environment) and reports whether each hop was a cold
start. Both handlers answer the keep-warm ping ``{"pipeline-keep-warm": true}`` at once;
``back`` counts the pings its environment saw."""

from __future__ import annotations

import json
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.clock import SystemClock
from pipeline.config import load_project
from pipeline.core.model import ServiceRef
from pipeline.core.state import Phase
from pipeline.local.factory import LocalFactory
from pipeline.local.lambda_.control_client import LambdaControlClient
from pipeline.local.lambda_.package import package_directory
from pipeline.local.plane.lifecycle import state_dir_of
from pipeline.operations import Context, deploy
from pipeline.owners import owner_id
from pipeline.testing import CollectingSink
from tests.local.support.plane import free_port_pair, get, git

BACK = '''
import json, os

PINGS = 0

def handle(event, context):
    global PINGS
    if isinstance(event, dict) and event.get("pipeline-keep-warm") is True:
        PINGS += 1
        return {"warm": True}
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"pid": os.getpid(), "pings_seen": PINGS})}
'''

FRONT = '''
import json, os, urllib.request

def handle(event, context):
    if isinstance(event, dict) and event.get("pipeline-keep-warm") is True:
        return {"warm": True}
    with urllib.request.urlopen(os.environ["ROUTER"] + "/back/x", timeout=20) as answer:
        back_cold = answer.headers.get("X-Lambda-Cold-Start") == "1"
        back = json.loads(answer.read())
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"release": "{marker}", "back_cold": back_cold, "back": back})}
'''


def service_yaml(
    name: str, priority: int, *, env: str = "{}", extra: str = "", lambda_extra: str = ""
) -> str:
    return f"""\
name: {name}
kind: lambda
owner: dev
paths: ["services/{name}/**"]
build: {{context: services/{name}}}
lambda:
  handler: handler.handle
  route: {{path: "/{name}*", priority: {priority}}}
  environment: {env}
{lambda_extra}
deploy:
  strategy: canary
  steps: [{{set_weight: 50}}, {{pause: 0.2s}}]
  timeouts: {{ready: 30s, verify: 10s, poll: 0.1s}}
{extra}"""


@dataclass
class Chain:
    """A git project with ``back`` deployed on a running plane (``make_chain``), and the
    moves the tests and the bench make on it."""

    root: Path
    port: int
    client: LambdaControlClient
    generation: int = 0

    @property
    def state_dir(self) -> Path:
        return state_dir_of(self.root)

    def commit(self, message: str, files: dict[str, str]) -> str:
        for name, text in files.items():
            (self.root / name).parent.mkdir(parents=True, exist_ok=True)
            (self.root / name).write_text(text)
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message)
        return git(self.root, "rev-parse", "HEAD")

    def commit_front(self, marker: str, *, calls: str = "", keep_warm: str = "") -> str:
        """A release of ``front`` answering ``marker``; ``calls`` e.g. "calls: [back]"."""
        yaml = service_yaml("front", 10, env=f'{{ROUTER: "http://127.0.0.1:{self.port}"}}',
                            extra=calls, lambda_extra=keep_warm)
        return self.commit(f"front {marker}", {
            "services/front/service.yaml": yaml,
            "services/front/handler.py": FRONT.replace("{marker}", marker),
        })

    def deploy(self, service: str, commit: str) -> list[str]:
        """Deploy ``commit`` of ``service`` through the engine; the deployment's notes."""
        factory = LocalFactory(load_project(self.root), SystemClock())
        env = factory.project.environment("dev")
        platform = factory.platform(env, factory.project.service(service))
        store, locks = factory.stores(env)
        sink = CollectingSink()
        ctx = Context(store=store, locks=locks, clock=factory.clock, sink=sink,
                      platform_for=lambda ref: platform, actor="tester", owner=owner_id("tester"))
        release = factory.registry(env).resolve(service, commit)
        state = deploy(ctx, ServiceRef(service, "dev"), release, factory.project.strategy(service))
        assert state.phase is Phase.SUCCEEDED, sink.notes
        return sink.notes

    def recycle_back(self) -> str:
        """Point back's live alias at a new version with no environment started yet."""
        self.generation += 1
        data = package_directory(self.root / "services" / "back")
        published = self.client.publish("dev_back", data, "handler.handle", 128, 10.0,
                                        {"GENERATION": str(self.generation)})
        version = str(published["version"])
        self.client.set_alias("dev_back", "live", {version: 1.0})
        return version

    def request(self) -> dict[str, Any]:
        """One request through the router: front's answer, its cold flag and its time (ms)."""
        started = time.perf_counter()
        status, headers, body = get(f"http://127.0.0.1:{self.port}/front/x", timeout=30)
        ms = (time.perf_counter() - started) * 1000
        assert status == 200, body
        return {"front_cold": headers.get("x-lambda-cold-start") == "1", "ms": ms, **json.loads(body)}

    def first_requests(self, concurrent: int) -> list[dict[str, Any]]:
        """``concurrent`` requests at once, then one more."""
        with ThreadPoolExecutor(concurrent) as pool:
            answers = list(pool.map(lambda _: self.request(), range(concurrent)))
        return [*answers, self.request()]

    def metrics(self, function: str, version: str, since: float) -> dict[str, Any]:
        return self.client.metrics(function, version, since, time.time() + 1)


def make_chain(root: Path) -> Chain:
    """A project at ``root`` (env ``dev`` on free ports) with ``back`` deployed; starts the plane."""
    port = free_port_pair()
    (root / "services" / "back").mkdir(parents=True)
    (root / "pipeline.yaml").write_text(textwrap.dedent(f"""\
        project: shop
        organisations: {{dev: {{members: []}}, ops: {{members: []}}}}
        environments:
          dev: {{platform: local, owner: dev, local: {{port: {port}}}}}
        """))
    (root / ".gitignore").write_text(".pipeline/\nreports/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "test")
    commit = Chain(root, port, LambdaControlClient("http://unused/")).commit("back", {
        "services/back/service.yaml": service_yaml("back", 20),
        "services/back/handler.py": BACK,
    })
    plane = LocalFactory(load_project(root), SystemClock()).plane()
    made = Chain(root, port, LambdaControlClient(f"{plane.base_url}/lambda/", token=plane.token))
    made.deploy("back", commit)
    return made
