"""The demo's workspace: a throwaway clone of the project, and releases made in worktrees.

The demo never touches the user's checkout or its ``.pipeline`` state: it clones the
committed project into ``<root>/.pipeline/demo/workspace`` and makes each new release as
a real commit in a throwaway ``git worktree`` of that clone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from pipeline.core.errors import PlatformError, UsageError


def git(cwd: Path, *args: str) -> str:
    try:
        proc = subprocess.run(
            ["git", "-c", "user.name=pipeline demo", "-c", "user.email=demo@pipeline.invalid", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
    except subprocess.CalledProcessError as exc:
        raise PlatformError(
            f"git {' '.join(args)} failed in {cwd}: {exc.stderr.strip() or exc.stdout.strip()}",
            hint="the demo needs the project to be a git repository with its services committed",
        ) from exc
    return proc.stdout.strip()


def fresh_clone(root: Path, work: Path) -> Path:
    """A new clone of ``root``'s HEAD at ``work / 'workspace'`` (the old one is removed)."""
    try:
        git(root, "rev-parse", "--verify", "HEAD")
    except PlatformError as exc:
        raise UsageError(
            f"{root} has no commit to demo",
            hint="run the demo from a clone of the project (git clone ...; bash scripts/demo.sh)",
        ) from exc
    workspace = work / "workspace"
    if workspace.exists():
        shutil.rmtree(workspace)
    work.mkdir(parents=True, exist_ok=True)
    git(work, "clone", "--quiet", "--no-hardlinks", str(root), str(workspace))
    return workspace


def enrol(workspace: Path, organisation: str, name: str) -> None:
    """Make ``name`` (the demo user's OS account) a member of ``organisation`` in the
    workspace's pipeline.yaml, committed there: approvals count only by a proven identity,
    so the demo's user approves for Ops as themselves. The user's checkout is not changed."""
    path = workspace / "pipeline.yaml"
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"^  {re.escape(organisation)}:\n    members: \[([^\]\n]*)\]", text, re.M)
    if match is None:
        raise UsageError(
            f"{path}: organisations.{organisation}.members is not a one-line list the demo can extend",
            hint=f"write it as `members: [a, b]` under organisations.{organisation}",
        )
    members = [m.strip() for m in match.group(1).split(",") if m.strip()]
    if name in members:
        return
    listed = ", ".join([*members, name])
    path.write_text(text[: match.start(1)] + listed + text[match.end(1) :], encoding="utf-8")
    git(workspace, "commit", "--quiet", "-am", f"demo: {name} acts for {organisation} in this workspace")


def make_release(repo: Path, branch: str, message: str, change: Callable[[Path], None]) -> str:
    """Commit ``change`` (applied to a throwaway worktree of ``repo``) on ``branch``; its SHA."""
    with tempfile.TemporaryDirectory(prefix="pipeline-demo-") as tmp:
        tree = Path(tmp) / "tree"
        git(repo, "worktree", "add", "--quiet", "-B", branch, str(tree), "HEAD")
        try:
            change(tree)
            git(tree, "add", "-A")
            git(tree, "commit", "--quiet", "-m", message)
            return git(tree, "rev-parse", "HEAD")
        finally:
            git(repo, "worktree", "remove", "--force", str(tree))
