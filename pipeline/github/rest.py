"""The ports of ``pipeline.github.ports`` over GitHub's REST API (one method per use case,
returning domain values). Endpoints, as documented on docs.github.com/rest:

- ``GET /repos/{o}/{r}/git/ref/heads/{branch}``, ``POST .../git/refs``,
  ``PATCH .../git/refs/heads/{branch}`` with ``force``
- ``GET .../git/commits/{sha}``, ``POST .../git/trees`` and ``.../git/commits``: a commit
  is built as an object first, then one ref update moves the branch to it
- ``GET /repos/{o}/{r}/contents/{path}?ref=`` (base64 content)
- ``GET|POST /repos/{o}/{r}/pulls`` (``head=OWNER:BRANCH``), ``GET|PATCH .../pulls/{n}``,
  ``.../pulls/{n}/files``, ``.../pulls/{n}/reviews``
- ``GET /orgs/{org}/members/{user}`` (204 member, 404 not, 302 requester not a member) and
  ``GET /orgs/{org}/teams/{slug}/memberships/{user}`` (``state`` active|pending)
- ``GET /repos/{o}/{r}/actions/runs/{id}`` and ``.../approvals``
- ``GET|POST /repos/{o}/{r}/deployments``, ``POST .../deployments/{id}/statuses``
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pipeline.core.errors import PlatformError
from pipeline.github.http import GitHubHttp
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


def _repo(repo: RepoName) -> str:
    return f"/repos/{quote(repo.owner)}/{quote(repo.name)}"


def _path(path: str) -> str:
    return quote(path, safe="/")


@dataclass(frozen=True)
class RestContents:
    http: GitHubHttp

    def branch_sha(self, repo: RepoName, branch: str) -> str | None:
        found = self.http.optional(f"{_repo(repo)}/git/ref/heads/{_path(branch)}")
        return None if found is None else str(found["object"]["sha"])

    def point_branch(self, repo: RepoName, branch: str, sha: str) -> None:
        if self.branch_sha(repo, branch) is None:
            body = {"ref": f"refs/heads/{branch}", "sha": sha}
            self.http.call("POST", f"{_repo(repo)}/git/refs", json=body)
        else:
            self.http.call(
                "PATCH", f"{_repo(repo)}/git/refs/heads/{_path(branch)}", json={"sha": sha, "force": True}
            )

    def read_file(self, repo: RepoName, path: str, ref: str) -> FileText | None:
        found = self.http.optional(f"{_repo(repo)}/contents/{_path(path)}", params={"ref": ref})
        if found is None:
            return None
        if not isinstance(found, dict) or found.get("type") != "file":
            raise PlatformError(
                f"{path} in {repo} at {ref} is not a file",
                hint="the releases/ folder holds one JSON file per service",
            )
        try:
            text = base64.b64decode(found.get("content", "")).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise PlatformError(
                f"{path} in {repo} at {ref} is not UTF-8 text: {exc}", hint="fix the file"
            ) from exc
        return FileText(path=path, text=text, sha=str(found["sha"]))

    def commit_file(self, repo: RepoName, parent: str, path: str, text: str, message: str) -> str:
        base_tree = self.http.json("GET", f"{_repo(repo)}/git/commits/{parent}")["tree"]["sha"]
        entry = {"path": path, "mode": "100644", "type": "blob", "content": text}
        tree_body = {"base_tree": base_tree, "tree": [entry]}
        tree = self.http.json("POST", f"{_repo(repo)}/git/trees", json=tree_body)
        body = {"message": message, "tree": tree["sha"], "parents": [parent]}
        return str(self.http.json("POST", f"{_repo(repo)}/git/commits", json=body)["sha"])


def _pull(data: Mapping[str, Any]) -> PullRequest:
    return PullRequest(
        number=int(data["number"]),
        url=str(data.get("html_url", "")),
        state=str(data["state"]),
        merged=bool(data.get("merged") or data.get("merged_at")),
        author=str((data.get("user") or {}).get("login", "")),
        title=str(data.get("title", "")),
        head_ref=str(data["head"]["ref"]),
        head_sha=str(data["head"]["sha"]),
        base_ref=str(data["base"]["ref"]),
        merge_commit_sha=str(data.get("merge_commit_sha") or ""),
    )


@dataclass(frozen=True)
class RestPullRequests:
    http: GitHubHttp

    def open_for(self, repo: RepoName, head: str) -> PullRequest | None:
        found = self.http.pages(f"{_repo(repo)}/pulls", {"state": "open", "head": f"{repo.owner}:{head}"})
        return _pull(found[0]) if found else None

    def create(self, repo: RepoName, head: str, base: str, title: str, body: str) -> PullRequest:
        payload = {"head": head, "base": base, "title": title, "body": body, "maintainer_can_modify": False}
        return _pull(self.http.json("POST", f"{_repo(repo)}/pulls", json=payload))

    def update(self, repo: RepoName, number: int, title: str, body: str) -> PullRequest:
        payload = {"title": title, "body": body}
        return _pull(self.http.json("PATCH", f"{_repo(repo)}/pulls/{number}", json=payload))

    def get(self, repo: RepoName, number: int) -> PullRequest:
        return _pull(self.http.json("GET", f"{_repo(repo)}/pulls/{number}"))

    def changed_files(self, repo: RepoName, number: int) -> list[str]:
        return [str(f["filename"]) for f in self.http.pages(f"{_repo(repo)}/pulls/{number}/files")]


@dataclass(frozen=True)
class RestApprovals:
    http: GitHubHttp

    def reviews(self, repo: RepoName, number: int) -> list[Review]:
        return [
            Review(
                id=int(r["id"]),
                reviewer=str((r.get("user") or {}).get("login", "")),
                state=str(r.get("state", "")),
                commit_id=str(r.get("commit_id") or ""),
                url=str(r.get("html_url", "")),
                submitted_at=str(r.get("submitted_at") or ""),
            )
            for r in self.http.pages(f"{_repo(repo)}/pulls/{number}/reviews")
        ]

    def run(self, repo: RepoName, run_id: int) -> WorkflowRun:
        data = self.http.json("GET", f"{_repo(repo)}/actions/runs/{run_id}")
        return WorkflowRun(
            id=int(data["id"]), url=str(data.get("html_url", "")), head_sha=str(data.get("head_sha", ""))
        )

    def run_approvals(self, repo: RepoName, run_id: int) -> list[RunApproval]:
        data = self.http.json("GET", f"{_repo(repo)}/actions/runs/{run_id}/approvals") or []
        return [
            RunApproval(
                reviewer=str((a.get("user") or {}).get("login", "")),
                state=str(a.get("state", "")),
                environments=tuple(str(e.get("name", "")) for e in a.get("environments", [])),
                comment=str(a.get("comment") or ""),
            )
            for a in data
        ]

    def is_member(self, org: str, login: str, team: str | None) -> bool:
        path = f"/orgs/{quote(org)}/members/{quote(login)}"
        status = self.http.call("GET", path, allow=(302, 404)).status_code
        if status == 302:
            raise PlatformError(
                f"cannot check whether {login} is a member of {org}: GitHub answered 302 because the "
                f"token does not belong to {org}",
                hint=f"use a token of a GitHub App installed on {org} with 'Members: read'",
            )
        if status != 204:
            return False
        if team is None:
            return True
        found = self.http.optional(f"/orgs/{quote(org)}/teams/{quote(team)}/memberships/{quote(login)}")
        return found is not None and found.get("state") == "active"


@dataclass(frozen=True)
class RestDeployments:
    http: GitHubHttp

    def find(self, repo: RepoName, sha: str, environment: str) -> Deployment | None:
        query: dict[str, str | int] = {"sha": sha, "environment": environment, "per_page": 1}
        found = self.http.json("GET", f"{_repo(repo)}/deployments", params=query)
        return _deployment(found[0]) if found else None

    def create(
        self, repo: RepoName, sha: str, environment: str, payload: Mapping[str, str], description: str
    ) -> Deployment:
        body = {
            "ref": sha,
            "environment": environment,
            "auto_merge": False,
            "required_contexts": [],
            "payload": dict(payload),
            "description": description,
        }
        return _deployment(self.http.json("POST", f"{_repo(repo)}/deployments", json=body))

    def add_status(
        self, repo: RepoName, deployment: int, state: str, url: str, description: str
    ) -> DeploymentStatus:
        body = {"state": state, "description": description}
        if url:
            body |= {"environment_url": url, "log_url": url}
        data = self.http.json("POST", f"{_repo(repo)}/deployments/{deployment}/statuses", json=body)
        return DeploymentStatus(id=int(data["id"]), state=str(data["state"]))


def _deployment(data: Mapping[str, Any]) -> Deployment:
    return Deployment(id=int(data["id"]), sha=str(data["sha"]), environment=str(data["environment"]))


@dataclass(frozen=True)
class GitHubApi:
    """The four ports over one HTTP client."""

    contents: RestContents
    pulls: RestPullRequests
    approvals: RestApprovals
    deployments: RestDeployments

    @classmethod
    def over(cls, http: GitHubHttp) -> GitHubApi:
        return cls(RestContents(http), RestPullRequests(http), RestApprovals(http), RestDeployments(http))
