"""A Dev/Ops world for the GitHub command tests: a real project on disk (staging owned by
Dev, prod owned by Ops and approved through GitHub), real staging history in the local
platform's SQLite store, the fake GitHub API on loopback, and the real CLI in-process.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from pipeline.app import App
from pipeline.core.model import Release, ServiceRef
from pipeline.core.ports import Record
from pipeline.core.state import Phase
from pipeline.engine import NullSink
from pipeline.operations import Context, deploy
from pipeline.testing import FakeClock, FakePlatform, FakeRegistry
from tests.support.fake_github import FakeGitHub
from tests.unit.support.engine import CANARY

OPS_REPO = "shop-ops/deployments"
DEV_REPO = "shop/shop"
DEV_TOKEN = "dev-app-token"  # the Dev pipeline's token for the Ops repository
DEV_BOT = "shop-dev-release[bot]"
OPS_TOKEN = "ops-app-token"  # the Ops workflow's token
OPS_BOT = "shop-ops-gate[bot]"


def project_yaml(github: bool = True) -> str:
    ops = "{github: {org: shop-ops, team: production}}" if github else "{members: [carol]}"
    return textwrap.dedent(
        f"""\
        project: shop
        organisations:
          dev: {{members: [alice]}}
          ops: {ops}
        environments:
          staging: {{platform: local, owner: dev, local: {{port: 18200}}}}
          prod:
            platform: local
            owner: ops
            requires: {{approval: ops, passed: [staging]}}
            local: {{port: 18300}}
        """
    )


SERVICE_YAML = """\
name: orders
kind: ecs
owner: dev
paths: [services/orders/**]
build: {context: services/orders}
local: {command: python -m app}
ecs: {container: orders, port: 8080, cpu: 256, memory: 512, route: {path: /o*, priority: 1}}
deploy:
  strategy: canary
  steps:
    - set_weight: 50
"""


@dataclass
class World:
    root: Path
    github: FakeGitHub
    registry: FakeRegistry = field(default_factory=FakeRegistry)

    def passed_staging(self, version: str) -> Release:
        """``version`` of orders deployed to staging through the engine, succeeded, in the
        store the CLI reads."""
        release = self.registry.add("orders", version)
        app = App(root_hint=self.root)
        store, locks = app.factory(app.environment("staging")).stores(app.environment("staging"))
        platform = FakePlatform.create()
        ctx = Context(
            store=store,
            locks=locks,
            clock=FakeClock(),
            sink=NullSink(),
            platform_for=lambda ref: platform.ports(),
            actor="alice",
            owner="alice@host:1",
        )
        assert deploy(ctx, ServiceRef("orders", "staging"), release, CANARY).phase is Phase.SUCCEEDED
        return release

    def history(self, env: str) -> list[Record]:
        app = App(root_hint=self.root)
        return app.store(env).history(ServiceRef("orders", env), limit=1000)

    def cli(self, *args: str, token: str = DEV_TOKEN, **env: str) -> tuple[int, str, str]:
        """Run ``pipeline --root ROOT ARGS`` as main() does: exit code, stdout, stderr."""
        from pipeline.cli import main as main_module

        environ = {
            "GITHUB_API_URL": self.github.url,
            "GITHUB_TOKEN": token,
            "GITHUB_REPOSITORY": DEV_REPO,
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_ACTOR": "someone-who-pushed",
            **env,
        }
        result: dict[str, int] = {}
        with CliRunner().isolation(env=environ) as (out, err, _mixed):
            result["code"] = main_module.main(["--root", str(self.root), *args])
            return result["code"], out.getvalue().decode(), err.getvalue().decode()

    def handoff(self, release: Release, *extra: str, **env: str) -> tuple[int, str, str]:
        return self.cli(
            "handoff", "orders", "--from", "staging", "--release", release.digest,
            "--ops-repo", OPS_REPO, "--json", *extra, **env,
        )


def make_world(root: Path, github: FakeGitHub, *, approvals_on_github: bool = True) -> World:
    (root / "services" / "orders").mkdir(parents=True)
    (root / "pipeline.yaml").write_text(project_yaml(approvals_on_github), encoding="utf-8")
    (root / "services" / "orders" / "service.yaml").write_text(SERVICE_YAML, encoding="utf-8")
    github.token(DEV_TOKEN, DEV_BOT)
    github.token(OPS_TOKEN, OPS_BOT)
    github.repo(OPS_REPO, {"README.md": "# deployments\n"})
    github.repo(DEV_REPO)
    github.member("shop-ops", "carol", teams=["production"])
    github.member("shop-ops", "dave")  # in the organisation, not in the team
    return World(root, github)


def outputs(path: Path) -> dict[str, Any]:
    """The key=value lines a command wrote to $GITHUB_OUTPUT."""
    values: dict[str, Any] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        values[key] = value
    return values
