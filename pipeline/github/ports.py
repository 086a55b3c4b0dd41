"""The small ports the GitHub use cases need; ``pipeline.github.rest`` implements them over
the REST API. Each method is one use, returns domain values, and raises ``PipelineError``s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from pipeline.github.models import (
    Deployment,
    DeploymentStatus,
    FileText,
    PullRequest,
    RepoName,
    Review,
    RunApproval,
    WorkflowRun,
)


class Contents(Protocol):
    """Branches and files of a repository."""

    def branch_sha(self, repo: RepoName, branch: str) -> str | None:
        """The commit ``branch`` points at, or None when there is no such branch."""

    def point_branch(self, repo: RepoName, branch: str, sha: str) -> None:
        """Create ``branch`` at ``sha``, or move it there (a force update, in one step)."""

    def read_file(self, repo: RepoName, path: str, ref: str) -> FileText | None:
        """``path`` at ``ref`` (a branch or commit), or None when it does not exist there."""

    def commit_file(self, repo: RepoName, parent: str, path: str, text: str, message: str) -> str:
        """A new commit on top of ``parent`` that writes ``text`` to ``path``; moves no branch.
        Returns the commit's sha."""


class PullRequests(Protocol):
    def open_for(self, repo: RepoName, head: str) -> PullRequest | None:
        """The open pull request from branch ``head`` of ``repo`` itself, if any."""

    def create(self, repo: RepoName, head: str, base: str, title: str, body: str) -> PullRequest: ...

    def update(self, repo: RepoName, number: int, title: str, body: str) -> PullRequest: ...

    def get(self, repo: RepoName, number: int) -> PullRequest: ...

    def changed_files(self, repo: RepoName, number: int) -> list[str]: ...


class Approvals(Protocol):
    """Who approved what: pull request reviews, run approvals, organisation membership."""

    def reviews(self, repo: RepoName, number: int) -> list[Review]:
        """Every submitted review of the pull request, oldest first."""

    def run(self, repo: RepoName, run_id: int) -> WorkflowRun: ...

    def run_approvals(self, repo: RepoName, run_id: int) -> list[RunApproval]:
        """Every approval or rejection of the run's environment deployments, oldest first."""

    def is_member(self, org: str, login: str, team: str | None) -> bool:
        """Whether ``login`` belongs to ``org`` (and is an active member of ``team``)."""


class Deployments(Protocol):
    def find(self, repo: RepoName, sha: str, environment: str) -> Deployment | None:
        """The newest deployment of commit ``sha`` to ``environment``, if any."""

    def create(
        self, repo: RepoName, sha: str, environment: str, payload: Mapping[str, str], description: str
    ) -> Deployment: ...

    def add_status(
        self, repo: RepoName, deployment: int, state: str, url: str, description: str
    ) -> DeploymentStatus: ...
