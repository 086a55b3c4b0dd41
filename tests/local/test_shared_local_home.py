"""A Dev checkout and an Ops project file share one local platform (``PIPELINE_LOCAL_HOME``).

Dev pushes each commit to the local registry, deploys it by image digest to dev and
promotes exactly that digest to staging; Ops, with its own ``pipeline.yaml`` (``--project``,
staging read-only), promotes the digest that passed staging into prod, although staging
serves a newer release by then, and is refused a digest that never passed staging. Real
processes, real routers, the real CLI.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.local.plane.lifecycle import plane_processes, read_plane, stop_plane
from tests.local.support.plane import APP, free_port_pair, get, git, version_of

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
  health_check: {path: /health, interval: 1s, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2}
  route: {path: "/orders*", priority: 10}
  deregistration_delay: 1s
deploy:
  strategy: canary
  steps: [{set_weight: 50}]
  analysis: {min_requests: 0}
  timeouts: {ready: 30s, verify: 10s, poll: 0.2s}
"""


@dataclass
class Sides:
    dev: Path  # the Dev repository's checkout (services and its pipeline.yaml)
    ops: Path  # the Ops repository's pipeline.yaml, outside the Dev checkout
    outputs: Path  # $GITHUB_OUTPUT
    prod_port: int

    def run(self, *args: str, ops: bool = False) -> tuple[int, dict[str, str]]:
        """``pipeline`` as Dev (or Ops, with --project); exit code and the step outputs written."""
        self.outputs.unlink(missing_ok=True)
        project = ["--project", str(self.ops)] if ops else []
        code = main(["--root", str(self.dev), *project, *args])
        written = self.outputs.read_text().splitlines() if self.outputs.exists() else []
        return code, dict(line.split("=", 1) for line in written)

    def commit(self, version: str) -> None:
        (self.dev / "services" / "orders" / "NOTES").write_text(version)
        git(self.dev, "add", "-A")
        git(self.dev, "commit", "-q", "-m", f"orders {version}")


@pytest.fixture
def sides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sides]:
    home = tmp_path / "local-home"
    monkeypatch.setenv("PIPELINE_LOCAL_HOME", str(home))
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "github_output"))
    monkeypatch.setenv("PIPELINE_ACTOR", "ci")
    dev_port, staging_port, prod_port = free_port_pair(), free_port_pair(), free_port_pair()
    while len({dev_port, dev_port + 1, staging_port, staging_port + 1, prod_port, prod_port + 1}) < 6:
        staging_port, prod_port = free_port_pair(), free_port_pair()
    dev = tmp_path / "dev-repo"
    (dev / "services" / "orders").mkdir(parents=True)
    (dev / "pipeline.yaml").write_text(textwrap.dedent(f"""\
        project: shop
        organisations: {{dev: {{members: []}}, ops: {{members: []}}}}
        environments:
          dev: {{platform: local, owner: dev, local: {{port: {dev_port}}}}}
          staging:
            {{platform: local, owner: dev, requires: {{passed: [dev]}}, local: {{port: {staging_port}}}}}
        """))
    (dev / "services" / "orders" / "app.py").write_text(APP)
    (dev / "services" / "orders" / "service.yaml").write_text(SERVICE)
    git(dev, "init", "-q", "-b", "main")
    git(dev, "config", "user.email", "test@example.com")
    git(dev, "config", "user.name", "test")
    git(dev, "add", "-A")
    git(dev, "commit", "-q", "-m", "orders v1")
    ops = tmp_path / "ops-repo" / "pipeline.yaml"
    ops.parent.mkdir()
    ops.write_text(textwrap.dedent(f"""\
        project: shop
        organisations: {{dev: {{members: []}}, ops: {{members: []}}}}
        environments:
          staging: {{platform: local, owner: dev, access: read, local: {{port: {staging_port}}}}}
          prod: {{platform: local, owner: ops, requires: {{passed: [staging]}}, local: {{port: {prod_port}}}}}
        """))
    try:
        yield Sides(dev, ops, tmp_path / "github_output", prod_port)
    finally:
        info = read_plane(home)
        stop_plane(home)
        if info is not None:
            assert plane_processes(info.id) == []


def _ship(sides: Sides, *, to_staging: bool) -> dict[str, str]:
    """Dev's chain for HEAD: push, deploy the image to dev, promote that digest to staging."""
    code, pushed = sides.run("push", "orders", "--env", "dev", "--github-output")
    assert code == 0 and pushed["image"] == f"local/orders@{pushed['digest']}"
    code, deployed = sides.run(
        "deploy", "orders", "--env", "dev", "--image", pushed["image"], "--yes", "--github-output"
    )
    assert code == 0, deployed
    assert deployed["succeeded"] == "true" and deployed["digest"] == pushed["digest"]
    assert deployed["version"] == pushed["version"]  # the stored release, not a digest-only one
    if to_staging:
        args = ("--from", "dev", "--to", "staging", "--release", pushed["digest"], "--yes", "--github-output")
        code, promoted = sides.run("promote", "orders", *args)
        assert code == 0 and promoted["succeeded"] == "true" and promoted["digest"] == pushed["digest"]
    return pushed


def test_ops_promotes_the_digest_that_passed_staging_through_a_shared_local_home(
    sides: Sides, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = _ship(sides, to_staging=True)
    sides.commit("v2")
    v2 = _ship(sides, to_staging=True)  # staging serves v2 now
    sides.commit("v3")
    v3 = _ship(sides, to_staging=False)  # v3 never reaches staging
    capsys.readouterr()

    code, _ = sides.run("promote", "orders", "--from", "staging", "--to", "prod", "--release", v3["digest"],
                        "--yes", ops=True)
    assert code == 5
    refusal = " ".join(capsys.readouterr().err.split())
    assert f"cannot promote {v3['digest']} of orders from staging" in refusal

    code, promoted = sides.run("promote", "orders", "--from", "staging", "--to", "prod", "--release",
                               v1["image"], "--yes", "--github-output", ops=True)
    assert code == 0 and promoted["succeeded"] == "true"
    assert promoted["digest"] == v1["digest"] != v2["digest"]
    status, _headers, body = get(f"http://127.0.0.1:{sides.prod_port}/orders")
    assert status == 200 and version_of(body) == v1["version"]

    capsys.readouterr()
    assert sides.run("history", "orders", "--env", "staging", "--json", ops=True)[0] == 0
    records = json.loads(capsys.readouterr().out)
    passed = {r["digest"] for r in records if r["action"] == "deployment.succeeded"}
    assert passed == {v1["digest"], v2["digest"]}
    refused = sides.run("deploy", "orders", "--env", "staging", "--image", v3["image"], "--yes", ops=True)
    assert refused[0] == 2
    assert not (sides.dev / ".pipeline").exists()  # everything lives in PIPELINE_LOCAL_HOME
