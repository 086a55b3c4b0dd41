"""Deployment statuses on the Dev commit: how a promotion ended, shown where Dev looks.

One GitHub deployment per (commit, environment) is created once and reused, so a re-run
job adds a status to the same deployment instead of a second deployment. Statuses use
GitHub's states (https://docs.github.com/rest/deployments/statuses).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.core.errors import UsageError
from pipeline.github.models import RepoName
from pipeline.github.ports import Deployments

STATES = ("success", "failure", "error", "in_progress", "queued", "pending", "inactive")
MAX_DESCRIPTION = 140  # GitHub rejects longer descriptions
_SHA = re.compile(r"^[0-9a-f]{7,40}$")


@dataclass(frozen=True, slots=True)
class StatusReport:
    deployment: int
    status: int
    state: str
    created: bool  # a new deployment (False: an existing one for this commit and environment)


def report(
    deployments: Deployments,
    repo: RepoName,
    commit: str,
    environment: str,
    state: str,
    *,
    url: str = "",
    description: str = "",
    payload: Mapping[str, str] | None = None,
) -> StatusReport:
    """Add a ``state`` status to the deployment of ``commit`` to ``environment``."""
    if not _SHA.fullmatch(commit):
        raise UsageError(f"--commit {commit!r} is not a commit sha", hint="pass the full 40-hex sha")
    if state not in STATES:
        raise UsageError(f"--state {state!r} is not a deployment state", hint=f"one of {', '.join(STATES)}")
    text = description if len(description) <= MAX_DESCRIPTION else description[: MAX_DESCRIPTION - 1] + "…"
    found = deployments.find(repo, commit, environment)
    deployment = found or deployments.create(repo, commit, environment, payload or {}, text)
    status = deployments.add_status(repo, deployment.id, state, url, text)
    return StatusReport(deployment.id, status.id, status.state, found is None)
