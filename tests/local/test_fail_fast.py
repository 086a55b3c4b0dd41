"""A release that cannot start fails readiness as soon as that is clear, and says why.

Whole deployments through the engine on the local platform (real plane, real replica
processes, real clock) with a ready timeout of ten minutes: the deployment ends, rolled
back, long before that, and its reason quotes what the crashing process printed on
stderr, or what its failing health check answered, instead of pointing to a log file.
A Lambda slot whose provisioned environments cannot initialise says so with the error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.clock import SystemClock
from pipeline.config import load_project
from pipeline.core.errors import PlatformError
from pipeline.core.model import ServiceRef, Slot
from pipeline.core.plan import Strategy
from pipeline.core.state import DeploymentState, Phase
from pipeline.local.factory import LocalFactory
from pipeline.local.lambda_.adapters import LocalLambdaCompute
from pipeline.local.lambda_.server import LambdaServer
from pipeline.local.plane.lifecycle import plane_processes, read_plane, stop_plane
from pipeline.operations import Context, deploy
from pipeline.owners import owner_id
from pipeline.testing import CollectingSink, release
from tests.local.support.lambda_runtime import make_source, wait_until, worker_children
from tests.local.support.plane import Project, get, version_of

REF = ServiceRef("orders", "dev")
TEN_MINUTES = 600.0

CRASHER = """\
import sys
print("starting orders", flush=True)
print("orders: cannot connect to the database at db.internal:5432", file=sys.stderr)
sys.exit(3)
"""

SICK = """\
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status": "down", "why": "cache cluster unreachable"}'
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


@pytest.fixture
def factory(project: Project) -> Iterator[LocalFactory]:
    yield LocalFactory(load_project(project.root), SystemClock())
    info = read_plane(project.state_dir)
    stop_plane(project.state_dir)
    if info is not None:
        assert plane_processes(info.id) == []


def _deploy(factory: LocalFactory, project: Project, commit: str) -> tuple[DeploymentState, CollectingSink]:
    """Deploy the stable HEAD~ first, then ``commit`` with a ten-minute ready timeout."""
    env = factory.project.environment("dev")
    platform = factory.platform(env, factory.project.service("orders"))
    store, locks = factory.stores(env)
    sink = CollectingSink()
    ctx = Context(store=store, locks=locks, clock=factory.clock, sink=sink,
                  platform_for=lambda ref: platform, actor="tester", owner=owner_id("tester"))
    strategy: Strategy = factory.project.strategy("orders")
    strategy = replace(strategy, timeouts=replace(strategy.timeouts, ready=TEN_MINUTES))
    registry = factory.registry(env)
    stable = registry.resolve("orders", project.commit)
    assert deploy(ctx, REF, stable, strategy).phase is Phase.SUCCEEDED, sink.notes
    return deploy(ctx, REF, registry.resolve("orders", commit), strategy), sink


def test_a_crash_looping_release_fails_readiness_quoting_its_stderr(
    project: Project, factory: LocalFactory
) -> None:
    commit = project.commit_launch("crash on start", "python crash.py", files={"crash.py": CRASHER})
    state, sink = _deploy(factory, project, commit)
    assert state.phase is Phase.ROLLED_BACK, sink.notes
    assert "never became ready within" not in state.reason  # not the ten-minute timeout
    assert "exited with code 3" in state.reason and "runs in a row" in state.reason
    assert "cannot connect to the database at db.internal:5432" in state.reason  # stderr, quoted
    status, _, body = get(f"http://127.0.0.1:{project.port}/orders")
    stable = factory.registry(factory.project.environment("dev")).resolve("orders", project.commit)
    assert status == 200 and version_of(body) == stable.version  # traffic stayed on the stable release


def test_a_release_failing_its_health_check_fails_readiness_quoting_the_answer(
    project: Project, factory: LocalFactory
) -> None:
    commit = project.commit_launch("unhealthy", "python sick.py", files={"sick.py": SICK})
    state, sink = _deploy(factory, project, commit)
    assert state.phase is Phase.ROLLED_BACK, sink.notes
    assert "never became ready within" not in state.reason
    assert "keeps failing its health check" in state.reason
    assert "answered 503" in state.reason and "cache cluster unreachable" in state.reason


BROKEN_HANDLER = """\
import json
SETTINGS = json.loads(open("settings.json").read())  # not in the package: fails at import

def handler(event, context):
    return SETTINGS
"""


def test_a_lambda_release_whose_environments_cannot_init_fails_readiness_quoting_the_error(
    tmp_path: Path,
) -> None:
    """Provisioned concurrency FAILED is final: the slot says so at once, with the init error."""
    with LambdaServer(tmp_path / "runtime") as server:
        handler = BROKEN_HANDLER.replace("{", "{{").replace("}", "}}")  # make_source formats it
        source = make_source(tmp_path / "broken", "broken", handler=handler)
        compute = LocalLambdaCompute(server.base_url, "orders", source, "app.handler", provisioned=2)
        bad = release("2.0.0")
        compute.provision(Slot.GREEN, bad)
        failure = ""

        def failed() -> bool:
            nonlocal failure
            try:
                compute.health(Slot.GREEN, bad)
            except PlatformError as exc:
                failure = exc.message
                return True
            return False

        wait_until(failed, 30)
        assert "cannot start" in failure
        assert "settings.json" in failure and "FileNotFoundError" in failure  # the init error, quoted
    assert worker_children() == []
