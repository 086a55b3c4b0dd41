"""Domain values read from GitHub: what the approval and handoff rules look at, nothing more.

The REST adapters (``pipeline.github.rest``) build these from GitHub's JSON; the use
cases never see a raw response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.core.errors import UsageError

_REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


@dataclass(frozen=True, slots=True)
class RepoName:
    """``OWNER/REPO``."""

    owner: str
    name: str

    @classmethod
    def parse(cls, text: str, *, option: str = "--repo") -> RepoName:
        if not _REPO.fullmatch(text) or text.endswith((".", "/..")) or "/.." in text:
            raise UsageError(
                f"{option} {text!r} is not a GitHub repository: expected OWNER/REPO",
                hint="e.g. acme-ops/deployments (without https://github.com/)",
            )
        owner, name = text.split("/", 1)
        return cls(owner, name)

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True, slots=True)
class FileText:
    """A file's text at some commit, and its blob sha (needed to replace it)."""

    path: str
    text: str
    sha: str


@dataclass(frozen=True, slots=True)
class PullRequest:
    number: int
    url: str  # the web page
    state: str  # open | closed
    merged: bool
    author: str
    title: str
    head_ref: str
    head_sha: str
    base_ref: str
    merge_commit_sha: str = ""


@dataclass(frozen=True, slots=True)
class Review:
    """A submitted pull request review; ``commit_id`` is the head it was submitted on."""

    id: int
    reviewer: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    commit_id: str
    url: str
    submitted_at: str = ""


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    id: int
    url: str
    head_sha: str


@dataclass(frozen=True, slots=True)
class RunApproval:
    """One review of a run's environment deployments (approved or rejected)."""

    reviewer: str
    state: str  # approved | rejected
    environments: tuple[str, ...]
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Deployment:
    id: int
    sha: str
    environment: str


@dataclass(frozen=True, slots=True)
class DeploymentStatus:
    id: int
    state: str
