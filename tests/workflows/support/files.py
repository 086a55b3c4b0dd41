"""The workflow and action files of the Dev repository (``.github``) and of the Ops
template (``ops/.github``), loaded once as YAML with the raw text kept for comments.

PyYAML reads the ``on:`` key as the boolean ``True``; ``triggers()`` hides that.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
DEV_GITHUB = REPO_ROOT / ".github"
OPS_ROOT = REPO_ROOT / "ops"
OPS_GITHUB = OPS_ROOT / ".github"

PIN = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+(?:/[\w./-]+)?)@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"#\s*v\d+\.\d+\.\d+\s*$")


@dataclass(frozen=True, slots=True)
class WorkflowFile:
    """One workflow or composite action file."""

    path: Path
    text: str
    data: dict[str, Any]
    side: str  # "dev" or "ops"

    @property
    def name(self) -> str:
        return str(self.path.relative_to(REPO_ROOT))

    @property
    def is_action(self) -> bool:
        return self.path.name in {"action.yml", "action.yaml"}

    def triggers(self) -> dict[str, Any]:
        on = self.data.get("on", self.data.get(True, {}))
        if isinstance(on, str):
            return {on: None}
        if isinstance(on, list):
            return dict.fromkeys(on)
        return dict(on or {})

    def jobs(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("jobs") or {})

    def steps(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every step as (job id or "action", step); composite actions included."""
        if self.is_action:
            for step in self.data.get("runs", {}).get("steps", []):
                yield "action", step
            return
        for job_id, job in self.jobs().items():
            for step in job.get("steps", []) or []:
                yield job_id, step

    def uses_lines(self) -> Iterator[tuple[str, str]]:
        """Each ``uses:`` value with its whole source line (to read its version comment)."""
        for line in self.text.splitlines():
            match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)", line)
            if match:
                yield match.group(1), line


def _load(path: Path, side: str) -> WorkflowFile:
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict), f"{path}: not a YAML mapping"
    return WorkflowFile(path=path, text=text, data=data, side=side)


@cache
def all_files() -> tuple[WorkflowFile, ...]:
    """Every workflow and action file of both repositories, sorted by path."""
    found: list[WorkflowFile] = []
    for side, folder in (("dev", DEV_GITHUB), ("ops", OPS_GITHUB)):
        paths = sorted(folder.glob("workflows/*.y*ml")) + sorted(folder.glob("actions/*/action.y*ml"))
        found.extend(_load(path, side) for path in paths)
    return tuple(found)


def workflows(side: str | None = None) -> list[WorkflowFile]:
    return [f for f in all_files() if not f.is_action and (side is None or f.side == side)]


def workflow(side: str, name: str) -> WorkflowFile:
    root = DEV_GITHUB if side == "dev" else OPS_GITHUB
    return _load(root / "workflows" / name, side)


@cache
def project_environments(side: str) -> dict[str, dict[str, Any]]:
    """The environments of ``pipeline.yaml`` (dev) or ``ops/pipeline.yaml`` (ops)."""
    root = REPO_ROOT if side == "dev" else OPS_ROOT
    data = yaml.safe_load((root / "pipeline.yaml").read_text(encoding="utf-8"))
    return dict(data["environments"])


def service_names() -> list[str]:
    """The services of this repository: every ``services/<name>/service.yaml``."""
    return sorted(p.parent.name for p in (REPO_ROOT / "services").glob("*/service.yaml"))


def run_scripts() -> Iterator[tuple[WorkflowFile, str, str]]:
    """Every ``run:`` script as (file, job id, script)."""
    for file in all_files():
        for job_id, step in file.steps():
            if "run" in step:
                yield file, job_id, str(step["run"])


def unquoted_expansions(script: str) -> list[str]:
    """The ``$NAME`` expansions of a shell script that stand outside double quotes.

    A small scanner (single quotes, double quotes, backslash escapes, ``#`` comments): an
    unquoted expansion would be split and globbed by the shell, so a value carrying spaces
    or wildcards could change the command.
    """
    found: list[str] = []
    quote = ""
    i = 0
    while i < len(script):
        char = script[i]
        if char == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or script[i - 1] in " \t\n"):
            i = script.find("\n", i)
            if i < 0:
                break
        elif char == "$":
            match = re.match(r"\$(\{?\w+\}?|\()", script[i:])
            found.append(match.group(0) if match else "$")
        i += 1
    return found
