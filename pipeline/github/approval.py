"""Approvals with a verified identity: who approved which digest, as GitHub recorded it.

A promotion pull request is approved when, as GitHub records it:

- it is merged;
- it changes exactly one ``releases/<service>.json``, and the merge commit's file names the
  same digest as the approved head's (so the approval binds to exactly one digest);
- a reviewer's latest review is ``APPROVED`` (``COMMENTED`` and ``PENDING`` reviews do not
  change a reviewer's decision, ``CHANGES_REQUESTED`` and ``DISMISSED`` replace it), its
  ``commit_id`` is the pull request's head (a push after the review voids it), the
  reviewer is not the author, and is a member of the approving organisation's GitHub
  org (and an active member of its team, when one is configured).

A run approval (single-organisation mode: production is a protected environment of the
same repository) is an ``approved`` review of the run's deployment to the environment by
such a member, and no rejection. ``GITHUB_ACTOR`` is never consulted: it is whoever
triggered the run.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import PromotionRefused
from pipeline.core.model import Release
from pipeline.github import release_file as rf
from pipeline.github.models import PullRequest, RepoName, Review, RunApproval, WorkflowRun
from pipeline.github.ports import Approvals, Contents, PullRequests

DECISIVE = frozenset({"APPROVED", "CHANGES_REQUESTED", "DISMISSED"})


@dataclass(frozen=True, slots=True)
class Approver:
    """Who may approve: the pipeline organisation and its GitHub org (and team)."""

    organisation: str
    org: str
    team: str | None = None

    def __str__(self) -> str:
        return f"{self.org}/{self.team}" if self.team else self.org


@dataclass(frozen=True, slots=True)
class VerifiedApproval:
    reviewer: str
    url: str
    release: Release
    source_repo: str
    organisation: str


def verify_pull(
    contents: Contents,
    pulls: PullRequests,
    approvals: Approvals,
    repo: RepoName,
    number: int,
    approver: Approver,
    *,
    digest: str = "",
) -> VerifiedApproval:
    """The verified approval of merged promotion pull request ``number``, or PromotionRefused."""
    pr = pulls.get(repo, number)
    if not pr.merged:
        raise _refused(
            f"pull request #{number} of {repo} is not merged (it is {pr.state})",
            "an approval counts once the approved promotion pull request is merged",
        )
    file = _release_file(contents, pulls, repo, pr)
    if digest and digest != file.digest:
        raise _refused(
            f"digest mismatch: pull request #{number} approved {file.digest}, not {digest}",
            "promote the digest the pull request names (the approval binds to it alone)",
        )
    review = _approving_review(approvals, repo, pr, approver)
    return VerifiedApproval(review.reviewer, pr.url, file.release, file.source_repo, approver.organisation)


def verify_run(
    approvals: Approvals, repo: RepoName, run_id: int, environment: str, approver: Approver
) -> tuple[WorkflowRun, RunApproval]:
    """The approving review of run ``run_id``'s deployment to ``environment``, or PromotionRefused."""
    run = approvals.run(repo, run_id)
    entries = [a for a in approvals.run_approvals(repo, run_id) if environment in a.environments]
    if not entries:
        raise _refused(
            f"run {run_id} of {repo} has no review of its deployment to {environment}",
            f"give the GitHub environment {environment} required reviewers (GitHub environment "
            "name = pipeline environment name) and approve the run",
        )
    rejected = [a for a in entries if a.state == "rejected"]
    if rejected:
        raise _refused(f"{rejected[-1].reviewer} rejected run {run_id}'s deployment to {environment}", "")
    reasons: list[str] = []
    for entry in reversed(entries):
        if entry.state != "approved":
            continue
        if approvals.is_member(approver.org, entry.reviewer, approver.team):
            return run, entry
        reasons.append(f"{entry.reviewer} is not a member of {approver}")
    raise _refused(
        f"no valid approval of run {run_id} for {environment}: " + ("; ".join(reasons) or "none approved"),
        f"a member of {approver} approves the deployment",
    )


def _release_file(contents: Contents, pulls: PullRequests, repo: RepoName, pr: PullRequest) -> rf.ReleaseFile:
    paths = [p for p in pulls.changed_files(repo, pr.number) if rf.service_of(p)]
    if len(paths) != 1:
        raise _refused(
            f"pull request #{pr.number} changes {len(paths)} release files ({', '.join(paths) or 'none'}): "
            f"a promotion pull request changes exactly one {rf.RELEASES_DIR}/<service>.json",
            "open one pull request per service (`pipeline handoff` does)",
        )
    path = paths[0]
    head = contents.read_file(repo, path, pr.head_sha)
    if head is None:
        raise _refused(f"pull request #{pr.number} deletes {path}: nothing to promote", "")
    file = rf.ReleaseFile.parse(head.text, f"{path} at {pr.head_sha[:7]}")
    if file.service != rf.service_of(path):
        raise _refused(f"{path} names service {file.service!r}", "a release file is named after its service")
    if pr.merge_commit_sha:
        merged = contents.read_file(repo, path, pr.merge_commit_sha)
        merged_digest = rf.ReleaseFile.parse(merged.text, path).digest if merged else "nothing"
        if merged_digest != file.digest:
            raise _refused(
                f"digest mismatch: the merged {path} names {merged_digest}, the approved head "
                f"{pr.head_sha[:7]} proposed {file.digest}",
                "the approval binds to the reviewed digest: hand the release off again and review it",
            )
    return file


def _approving_review(approvals: Approvals, repo: RepoName, pr: PullRequest, approver: Approver) -> Review:
    latest: dict[str, Review] = {}
    for review in approvals.reviews(repo, pr.number):
        if review.state in DECISIVE:
            latest[review.reviewer] = review
    approved = sorted((r for r in latest.values() if r.state == "APPROVED"), key=lambda r: -r.id)
    if not approved:
        others = ", ".join(f"{r.reviewer} {r.state.lower().replace('_', ' ')}" for r in latest.values())
        raise _refused(
            f"no approving review of pull request #{pr.number}" + (f" ({others})" if others else ""),
            f"a member of {approver} approves the pull request's head commit",
        )
    reasons: list[str] = []
    for review in approved:
        if review.reviewer == pr.author:
            reasons.append(f"{review.reviewer} is the pull request's author")
        elif review.commit_id != pr.head_sha:
            reasons.append(
                f"{review.reviewer} approved commit {review.commit_id[:7]}, not the head {pr.head_sha[:7]} "
                "(a push after a review voids it)"
            )
        elif not approvals.is_member(approver.org, review.reviewer, approver.team):
            reasons.append(f"{review.reviewer} is not a member of {approver}")
        else:
            return review
    raise _refused(
        f"no valid approval of pull request #{pr.number}: " + "; ".join(reasons),
        f"a member of {approver} approves the head commit of the pull request",
    )


def _refused(message: str, hint: str) -> PromotionRefused:
    return PromotionRefused(message, hint=hint)
