"""A real git repository for tests that package a release from its commit."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

from pipeline.core.model import Release
from pipeline.testing import release


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=tester", "-c", "user.email=tester@example.com",
         "-c", "commit.gpgsign=false", *args],
        capture_output=True, text=True, check=True,
    )
    return done.stdout.strip()


def init(repo: Path) -> None:
    git(repo, "init", "-q", "-b", "main")


def commit_all(repo: Path, message: str) -> str:
    """Commit everything in ``repo``; returns the commit's sha."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def released(version: str, service: str, commit: str) -> Release:
    """A test release of ``service`` built from ``commit``."""
    return replace(release(version, service), commit=commit)
