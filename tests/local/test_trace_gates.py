"""Traces in the gates, on the local platform with the real example services.

Orders (unchanged) calls catalog through the environment's router. A new catalog release
makes its database call 300 ms slower (a committed ``fault.json``). Its canary deployment
(half the traffic to the new release, then an open pause, then analysis with a per-hop check) runs in
the background while orders' load stage sends quotes through orders -> catalog:

- the load stage's report says where the time goes per catalog release and flags
  ``catalog db.query`` as the hop that grew, while orders' own hops did not; at 50 % either
  release may serve more traces, so the baseline is the release the history says is stable;
- ``pipeline continue`` lets the analysis judge the new release: its ``catalog db.query``
  hop fails the ``hop_p95_ms`` gate and the deployment rolls back, although catalog's
  error rate is 0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.local.plane.lifecycle import plane_processes, read_plane, stop_plane
from tests.local.support.plane import Project, free_port_pair, git, wait_until

REPO = Path(__file__).resolve().parents[2]
TIMEOUTS = "timeouts: {ready: 30s, verify: 10s, stage: 60s, poll: 0.2s}"
ORDERS_YAML = f"""\
name: orders
kind: ecs
owner: dev
paths: ["services/orders/**"]
build: {{context: services/orders}}
local: {{command: python -m app, replicas: 1}}
ecs:
  container: orders
  port: 8080
  health_check: {{path: /health, interval: 5s, timeout: 2s}}
  route: {{path: "/orders*", priority: 10}}
  deregistration_delay: 1s
load: {{locustfile: loadtests/quote.py, users: 4, spawn_rate: 4, duration: 4s}}
deploy:
  analysis: {{interval: 1s, window: 1s, min_requests: 1}}
  {TIMEOUTS}
"""
CATALOG_YAML = f"""\
name: catalog
kind: ecs
owner: dev
paths: ["services/catalog/**"]
build: {{context: services/catalog}}
local: {{command: python -m app, replicas: 1}}
ecs:
  container: catalog
  port: 8080
  health_check: {{path: /health, interval: 5s, timeout: 2s}}
  route: {{path: "/catalog*", priority: 20}}
  deregistration_delay: 1s
deploy:
  strategy: canary
  steps: [{{set_weight: 50}}, {{pause: {{}}}}, {{analyze: {{}}}}]
  analysis:
    interval: 1s
    window: 2s
    min_requests: 3
    checks:
      - {{metric: error_rate, max: 0.01}}
      - {{metric: hop_p95_ms, hop: "catalog db.query", max: 200}}
  {TIMEOUTS}
"""
LOCUSTFILE = '''
from locust import FastHttpUser, constant, task


class QuoteUser(FastHttpUser):
    wait_time = constant(0.02)

    @task
    def quote(self):
        self.client.get("/orders/quote?product=3&quantity=2", name="/orders/quote")
'''


@dataclass
class Canary:
    """The shop with catalog's slow release at 50 %, its deployment paused in ``process``."""

    project: Project
    process: subprocess.Popen[str]
    version: str


def _cli(project: Project, *args: str, ok: bool = True, env: dict[str, str] | None = None) -> Any:
    result = CliRunner(env=env).invoke(cli, ["--root", str(project.root), *args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _project(root: Path) -> Project:
    port = free_port_pair()
    root.mkdir(parents=True)
    (root / "pipeline.yaml").write_text(textwrap.dedent(f"""\
        project: shop
        organisations: {{dev: {{members: []}}}}
        environments:
          dev: {{platform: local, owner: dev, local: {{port: {port}}}}}
        """))
    (root / ".gitignore").write_text(".pipeline/\nreports/\n")
    (root / "loadtests").mkdir()
    (root / "loadtests" / "quote.py").write_text(LOCUSTFILE)
    for name, config in (("orders", ORDERS_YAML), ("catalog", CATALOG_YAML)):
        folder = root / "services" / name
        folder.mkdir(parents=True)
        for file in ("app.py", "telemetry.py", "VERSION"):
            shutil.copy(REPO / "services" / name / file, folder / file)
        (folder / "service.yaml").write_text(config)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "test")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "orders and catalog")
    return Project(root, port, git(root, "rev-parse", "HEAD"))


def _status(project: Project) -> dict[str, Any]:
    """Catalog's latest deployment as ``pipeline status --json`` shows it."""
    (entry,) = json.loads(_cli(project, "status", "catalog", "--env", "dev", "--json").stdout)
    return dict(entry)


def _paused_at_50(project: Project) -> bool:
    s = _status(project)
    return bool(s["phase"] == "progressing" and s["waiting_for"] == "Hold" and s["weights"]
                and s["weights"][s["new_slot"]] == 50)


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Canary]:
    project = _project(tmp_path_factory.mktemp("trace-gates") / "repo")
    hidden = {k: os.environ.pop(k) for k in ("GITHUB_ACTIONS", "TRACEPARENT") if k in os.environ}
    process: subprocess.Popen[str] | None = None
    try:
        _cli(project, "deploy", "orders", "--env", "dev")
        _cli(project, "deploy", "catalog", "--env", "dev")
        slow = project.commit_change("services/catalog/fault.json", '{"db_latency_ms": 300}\n',
                                     "catalog: a slower query")
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli.main", "--root", str(project.root), "deploy", "catalog",
             "--env", "dev", "--ref", slow],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})
        wait_until(lambda: _paused_at_50(project) or process.poll() is not None, timeout=60,
                   what="the canary paused at 50 %")
        assert process.poll() is None, process.communicate()
        yield Canary(project, process, slow)
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.communicate()
        os.environ.update(hidden)
        info = read_plane(project.state_dir)
        stop_plane(project.state_dir)
        if info is not None:
            assert plane_processes(info.id) == []


def test_orders_load_stage_flags_catalogs_database_call_as_the_hop_that_grew(
        canary: Canary, tmp_path: Path) -> None:
    outputs = tmp_path / "github_output"
    result = _cli(canary.project, "loadtest", "orders", "--env", "dev", "--json", "--github-output",
                  env={"GITHUB_OUTPUT": str(outputs)})
    report = json.loads(result.stdout)
    assert report["passed"] is True
    hops = report["hops"]
    stable, slow = hops["groups"]
    assert stable["stable"] is True and stable["label"].startswith("catalog ") and "(blue)" in stable["label"]
    assert slow["stable"] is False and slow["label"].startswith("catalog ") and "(green)" in slow["label"]
    assert [(f["release"], f["hop"]) for f in hops["flagged"]] == [(slow["label"], "catalog db.query")]
    assert hops["flagged"][0]["growth_ms"] >= 250
    changes = {c["hop"]: c for c in slow["changes"]}
    for own in ("orders GET /orders/quote", "orders db.query", "orders -> catalog"):  # orders' own spans
        assert not changes[own]["flagged"] and abs(changes[own]["growth_ms"]) < 50, changes[own]
    summary = Path(report["reports"]["markdown"]).read_text(encoding="utf-8")
    assert "#### Where the time goes" in summary
    assert re.search(r"^\| catalog db\.query \| 3\d\d\.\d \| 3\d\d\.\d \|", summary, re.MULTILINE), summary
    assert "❗ grew" in summary and "- ❗ hop grew: catalog db.query +" in summary
    assert "where the time goes: catalog" in result.stderr and "hop grew: catalog db.query +" in result.stderr
    assert "grown_hops=catalog db.query\n" in outputs.read_text()


def test_a_per_hop_latency_gate_rolls_the_slow_release_back(canary: Canary) -> None:
    _cli(canary.project, "continue", "catalog", "--env", "dev")
    try:
        _, stderr = canary.process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        canary.process.kill()
        raise
    assert canary.process.returncode != 0
    assert "rolled_back" in stderr and "hop_p95_ms of catalog db.query" in stderr, stderr
    history = json.loads(_cli(canary.project, "history", "catalog", "--env", "dev", "--json").stdout)
    failed = [r for r in history if "analysis failed" in str(r.get("detail", ""))]
    assert failed and "hop_p95_ms of catalog db.query" in failed[-1]["detail"]
    assert "error_rate" not in failed[-1]["detail"].split("(")[0]  # catalog's own error rate passed
    after = _status(canary.project)
    assert after["phase"] == "rolled_back" and after["weights"][after["new_slot"]] == 0
