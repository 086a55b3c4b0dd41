"""The end-to-end world: a Dev repository (a throwaway copy of this project with short
strategies), an Ops repository (the ``ops/`` template), a fake GitHub API, and one local
platform (``PIPELINE_LOCAL_HOME``) that both repositories' workflows share.

Builds everything in a temporary folder; ``close()`` stops the local plane and the fake.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.workflows.support.act import Act, ActRun
from tests.workflows.support.fake_github_process import FakeGitHubProcess
from tests.workflows.support.files import OPS_ROOT, REPO_ROOT
from tests.workflows.support.shortened import (
    edit_yaml,
    fast_environments,
    shorten_orders,
    single_organisation,
)

DEV_ORG, DEV_NAME = "dev-org", "shop"
OPS_ORG, OPS_NAME = "ops-org", "ops"
DEV_REPO = f"{DEV_ORG}/{DEV_NAME}"
OPS_REPO = f"{OPS_ORG}/{OPS_NAME}"
OPS_TEAM = "production"
OPS_APP_TOKEN = "app-token-ops-client"  # what the app-token stand-in mints for the Ops App
DEV_APP_TOKEN = "app-token-dev-client"
SINGLE_ORG_CLIENT = "single-org-client"  # the App of single-organisation mode, on the Dev repository
OPS_MEMBER = "carol"
OUTSIDER = "mallory"
PIPELINE = [sys.executable, "-m", "pipeline.cli.main"]  # the toolkit of the interpreter running the tests
GIT_IDENTITY = ["-c", "user.name=pipeline tests", "-c", "user.email=tests@pipeline.invalid"]


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *GIT_IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def free_port_pairs(count: int) -> list[int]:
    """``count`` ports p, each with p and p + 1 free (a local environment's router and its
    test route), none overlapping. Picked below the kernel's ephemeral range (32768+), where
    client sockets of other processes cannot take them between this check and the bind."""
    chosen: list[int] = []
    rng = random.Random()
    while len(chosen) < count:
        port = rng.randrange(20000, 32000, 2)
        if port not in chosen and _free(port) and _free(port + 1):
            chosen.append(port)
    return chosen


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def copy_worktree(source: Path, target: Path) -> None:
    """The files git would commit from ``source`` (tracked and new, not ignored), as they are now."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = source / name
        if src.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / name)


@dataclass
class World:
    base: Path
    dev: Path = field(init=False)
    ops: Path = field(init=False)
    home: Path = field(init=False)
    artifacts: Path = field(init=False)
    github: FakeGitHubProcess = field(init=False)
    act: Act = field(init=False)
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dev, self.ops = self.base / "dev", self.base / "ops"
        self.home, self.artifacts = self.base / "local-home", self.base / "artifacts"
        for folder in (self.dev, self.ops, self.home, self.artifacts, self.base / "act", self.base / "repos"):
            folder.mkdir(parents=True)
        self.ports = dict(zip(("dev", "staging", "prod"), free_port_pairs(3), strict=True))
        self.github = FakeGitHubProcess(self.base / "github.json", self.base / "github.log")

    # --- building -------------------------------------------------------------------

    def build(self) -> None:
        self._dev_repository()
        self._ops_repository()
        self.github.start()
        self._seed_github()
        tools = self.base / "build-tools"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", str(tools), "setuptools>=68", "wheel"],
            check=True, capture_output=True,
        )
        self.act = Act(
            cache=self.base / "act",
            env={
                "PIPELINE_LOCAL_HOME": str(self.home),
                "GITHUB_API_URL": self.github.url,
                "STANDIN_REPOS": str(self.base / "repos"),
                "STANDIN_ARTIFACTS": str(self.artifacts),
                "STANDIN_BUILD_TOOLS": str(tools),
                "STANDIN_PYTHON": sys.executable,
                "STANDIN_SITE_PACKAGES": os.pathsep.join(
                    p for p in sys.path if p.endswith(("site-packages", "dist-packages"))
                ),
            },
            variables={
                "OPS_ORG": OPS_ORG, "OPS_REPO": OPS_NAME,
                "OPS_APP_CLIENT_ID": "ops-client", "DEV_APP_CLIENT_ID": "dev-client",
                "DEV_ORG": DEV_ORG, "DEV_REPO": DEV_NAME, "DEV_REPOS": DEV_NAME,
                "PIPELINE_TOOLKIT_REPO": DEV_REPO, "PIPELINE_TOOLKIT_REF": self.head(),
            },
            secrets={"OPS_APP_PRIVATE_KEY": "ops-private-key", "DEV_APP_PRIVATE_KEY": "dev-private-key"},
        )

    def _dev_repository(self) -> None:
        copy_worktree(REPO_ROOT, self.dev)
        def configure(project: dict[str, Any]) -> None:
            fast_environments(project, self.ports)
            single_organisation(project, OPS_ORG, OPS_TEAM)

        edit_yaml(self.dev / "pipeline.yaml", configure)
        edit_yaml(self.dev / "services/orders/service.yaml", shorten_orders)
        git(self.dev, "init", "-q", "-b", "main")
        git(self.dev, "remote", "add", "origin", f"https://github.com/{DEV_REPO}.git")
        git(self.dev, "add", "-A")
        git(self.dev, "commit", "-q", "-m", "the project, with short strategies for the workflow tests")
        (self.base / "repos" / DEV_REPO).parent.mkdir(parents=True)
        (self.base / "repos" / DEV_REPO).symlink_to(self.dev)

    def _ops_repository(self) -> None:
        shutil.copytree(OPS_ROOT, self.ops, dirs_exist_ok=True)

        def configure(project: dict[str, Any]) -> None:
            fast_environments(project, self.ports)
            single_organisation(project, OPS_ORG, OPS_TEAM)
            project["organisations"]["ops"]["members"] = [OPS_MEMBER]

        edit_yaml(self.ops / "pipeline.yaml", configure)
        git(self.ops, "init", "-q", "-b", "main")
        git(self.ops, "remote", "add", "origin", f"https://github.com/{OPS_REPO}.git")
        git(self.ops, "add", "-A")
        git(self.ops, "commit", "-q", "-m", "the Ops repository")

    def _seed_github(self) -> None:
        gh = self.github
        gh.call("POST", "/_fake/tokens", {"token": OPS_APP_TOKEN, "login": "shop-ops[bot]",
                                          "repos": [OPS_REPO]})
        gh.call("POST", "/_fake/tokens", {"token": DEV_APP_TOKEN, "login": "shop-dev[bot]",
                                          "repos": [DEV_REPO]})
        gh.call("POST", "/_fake/tokens", {"token": f"app-token-{SINGLE_ORG_CLIENT}", "login": "shop[bot]",
                                          "repos": [DEV_REPO]})
        gh.call("POST", f"/_fake/orgs/{OPS_ORG}/members", {"login": OPS_MEMBER, "teams": [OPS_TEAM]})
        files = {str(p.relative_to(self.ops)): p.read_text(encoding="utf-8")
                 for p in self.ops.rglob("*") if p.is_file() and ".git" not in p.relative_to(self.ops).parts}
        gh.call("POST", "/_fake/repos", {"full_name": OPS_REPO, "files": files})
        gh.call("POST", "/_fake/repos", {"full_name": DEV_REPO})
        self._mirror_dev_commit()

    # --- using ----------------------------------------------------------------------

    def head(self) -> str:
        return git(self.dev, "rev-parse", "HEAD")

    def commit_dev(self, message: str, files: dict[str, str | None]) -> str:
        """Commit ``files`` (None removes one) to the Dev repository; the new HEAD."""
        for name, text in files.items():
            if text is None:
                (self.dev / name).unlink()
            else:
                (self.dev / name).write_text(text, encoding="utf-8")
        git(self.dev, "add", "-A")
        git(self.dev, "commit", "-q", "-m", message)
        return self._mirror_dev_commit()

    def _mirror_dev_commit(self) -> str:
        """The Dev repository's HEAD, pushed to the fake too (deployment statuses name it)."""
        sha = self.head()
        self.github.call("POST", f"/_fake/repos/{DEV_REPO}/commits",
                         {"branch": "main", "files": {"HEAD": sha}, "sha": sha})
        return sha

    def push(self, before: str) -> ActRun:
        """The ``deliver`` workflow for a push of the Dev repository's HEAD over ``before``."""
        event = {"ref": "refs/heads/main", "before": before, "after": self.head(),
                 "repository": {"full_name": DEV_REPO, "default_branch": "main"}}
        return self.act.run(self.dev, "push", event, "deliver.yml")

    def dispatch(
        self, repo: Path, workflow: str, inputs: dict[str, str], run_id: int | None = None
    ) -> ActRun:
        """A manual run of ``workflow`` (``run_id``: the run's number, as GitHub's API knows it)."""
        event = {"inputs": inputs, "ref": "refs/heads/main"}
        saved = dict(self.act.variables)
        if run_id is not None:
            self.act.env["GITHUB_RUN_ID"] = str(run_id)
        if repo == self.dev:  # single-organisation mode: the organisation's App on this repository
            self.act.variables["OPS_APP_CLIENT_ID"] = SINGLE_ORG_CLIENT
        try:
            return self.act.run(repo, "workflow_dispatch", event, workflow, inputs=inputs)
        finally:
            self.act.env.pop("GITHUB_RUN_ID", None)
            self.act.variables = saved

    def approve_run(self, run_id: int, reviewer: str, environment: str = "prod") -> None:
        """A reviewer's approval of run ``run_id``'s deployment to ``environment`` on the fake."""
        self.github.call("POST", f"/_fake/repos/{DEV_REPO}/runs", {
            "id": run_id, "head_sha": self.head(),
            "approvals": [{"user": reviewer, "state": "approved", "environments": [environment]}],
        })

    def merged_pull_request(self, number: int, head_ref: str) -> ActRun:
        """Ops ``promote.yml`` for the merge of pull request ``number``."""
        event = {
            "action": "closed", "number": number,
            "pull_request": {"number": number, "merged": True, "head": {"ref": head_ref},
                             "base": {"ref": "main"}},
            "repository": {"full_name": OPS_REPO, "default_branch": "main"},
        }
        return self.act.run(self.ops, "pull_request", event, "promote.yml")

    def pipeline(self, *args: str, root: Path | None = None, project: Path | None = None,
                 actor: str | None = None, token: str | None = None,
                 check: bool = True) -> subprocess.CompletedProcess[str]:
        """The machine's ``pipeline`` on the shared local platform (and the fake GitHub API)."""
        environ = self._environ()
        if token:
            environ["GITHUB_TOKEN"] = token
        if actor:
            environ["PIPELINE_ACTOR"] = actor
        head = ["--root", str(root or self.dev)] + (["--project", str(project)] if project else [])
        proc = subprocess.run([*PIPELINE, *head, *args], env=environ, capture_output=True, text=True,
                              timeout=300, check=False)
        if check:
            command = " ".join(args)
            assert proc.returncode == 0, f"pipeline {command}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
        return proc

    @contextmanager
    def background(self, *args: str) -> Iterator[subprocess.Popen[str]]:
        """``pipeline ARGS`` running while the block runs (killed if it is still running after)."""
        proc = subprocess.Popen([*PIPELINE, "--root", str(self.dev), *args], env=self._environ(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)

    def wait_for_status(self, service: str, env: str, ready: Callable[[dict[str, Any]], bool],
                        attempts: int = 300) -> dict[str, Any]:
        """The status row of ``service`` in ``env`` once ``ready(row)`` (polled, at most ``attempts``)."""
        rows: list[dict[str, Any]] = []
        for _ in range(attempts):
            rows = json.loads(self.pipeline("status", service, "--env", env, "--json").stdout)
            if rows and ready(rows[0]):
                return rows[0]
            time.sleep(0.2)
        raise AssertionError(f"{service}@{env} never reached the state the test waits for: {rows}")

    def history(self, service: str, env: str) -> list[dict[str, Any]]:
        project = self.ops / "pipeline.yaml" if env == "prod" else None
        proc = self.pipeline("history", service, "--env", env, "--json", project=project)
        data = json.loads(proc.stdout)
        return list(data["records"] if isinstance(data, dict) else data)

    def _environ(self) -> dict[str, str]:
        hidden = ("PIPELINE_", "GITHUB_")
        environ = {k: v for k, v in os.environ.items() if not k.startswith(hidden)}
        return environ | {"PIPELINE_LOCAL_HOME": str(self.home), "GITHUB_API_URL": self.github.url,
                          "GITHUB_REPOSITORY": DEV_REPO}

    def close(self) -> None:
        """Stop the local plane (``pipeline local down``; if that cannot run, end the plane
        named in ``plane.json`` and its replicas) and the fake GitHub API."""
        if self.pipeline("local", "down", check=False).returncode != 0:
            self._kill_plane()
        self.github.stop()

    def _kill_plane(self) -> None:
        info = self.home / "plane.json"
        if not info.is_file():
            return
        try:
            plane = psutil.Process(int(json.loads(info.read_text(encoding="utf-8"))["pid"]))
            if str(self.home) not in " ".join(plane.cmdline()):
                return  # the pid was reused by another process
            for proc in [*plane.children(recursive=True), plane]:
                proc.kill()
        except (psutil.Error, ValueError, KeyError):
            return
