"""The handoff: open or update the one promotion pull request of a service in the Ops
repository.

Branch ``promote/<service>`` carries one commit on top of the base branch: the new
``releases/<service>.json``. Idempotent: when the open pull request already proposes the
same digest nothing is written (``changed`` is false), so a re-run CI job is harmless. A
newer release is committed on top of the base as a commit object first, then the branch
is force-moved to it in one ref update, so the pull request always shows exactly one
change against production and reviews of the older release stop counting (their
``commit_id`` is no longer the head). The branch is never reset to the base itself:
GitHub marks an open pull request merged once the base contains its head.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import NotFoundError, PromotionRefused
from pipeline.github import release_file as rf
from pipeline.github.models import RepoName
from pipeline.github.ports import Contents, PullRequests


@dataclass(frozen=True, slots=True)
class HandoffRequest:
    repo: RepoName
    base: str
    file: rf.ReleaseFile
    server_url: str = "https://github.com"


@dataclass(frozen=True, slots=True)
class HandoffResult:
    pr_number: int | None  # None: production already runs this release, nothing to propose
    pr_url: str
    changed: bool
    note: str


def hand_off(contents: Contents, pulls: PullRequests, request: HandoffRequest) -> HandoffResult:
    """Open, update or leave alone the promotion pull request of ``request.file``'s service."""
    repo, new = request.repo, request.file
    branch, path = rf.branch_for(new.service), new.path
    base_sha = contents.branch_sha(repo, request.base)
    if base_sha is None:
        raise NotFoundError(
            f"the Ops repository {repo} has no branch {request.base}",
            hint="pass --base with the branch production is promoted from",
        )
    base_file = contents.read_file(repo, path, base_sha)
    current = _parsed(base_file.text, f"{path} on {request.base}") if base_file else None
    existing = pulls.open_for(repo, branch)
    if existing is not None:
        proposed = contents.read_file(repo, path, existing.head_sha)
        if proposed is not None and _digest(proposed.text) == new.digest:
            note = f"#{existing.number} already proposes it"
            return HandoffResult(existing.number, existing.url, False, note)
    elif current is not None and current.digest == new.digest:
        return HandoffResult(None, "", False, f"{path} on {request.base} already names this release")
    message = f"{rf.title(new)}\n\nFrom {new.source_repo or 'the Dev repository'} ({new.source_environment})."
    contents.point_branch(repo, branch, contents.commit_file(repo, base_sha, path, new.to_json(), message))
    title = rf.title(new)
    text = rf.body(current, new, base=request.base, server_url=request.server_url)
    if existing is not None:
        pr = pulls.update(repo, existing.number, title, text)
        return HandoffResult(pr.number, pr.url, True, f"updated #{pr.number}")
    pr = pulls.create(repo, branch, request.base, title, text)
    return HandoffResult(pr.number, pr.url, True, f"opened #{pr.number}")


def _parsed(text: str, where: str) -> rf.ReleaseFile | None:
    try:
        return rf.ReleaseFile.parse(text, where)
    except PromotionRefused:
        return None  # an unreadable file on the base is shown as unknown and replaced


def _digest(text: str) -> str:
    parsed = _parsed(text, "the proposed release file")
    return parsed.digest if parsed else ""
