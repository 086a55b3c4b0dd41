"""The data behind the fake GitHub API: tokens, organisations, repositories as commit
snapshots, pull requests, reviews, deployments and workflow runs.

Everything lives in one JSON-serialisable dict so that ``--state FILE`` can persist it and
a test (or another process) can read it back. A commit is a snapshot of every file's text;
branches point at commits; a pull request's changed files are the difference between its
head and the merge base with its base branch, as on GitHub.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

State = dict[str, Any]
Repo = dict[str, Any]
Pull = dict[str, Any]


class FakeError(Exception):
    """An API error the server answers with ``status`` and GitHub's JSON error body."""

    def __init__(self, status: int, message: str, docs: str = "", headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.docs = docs or "https://docs.github.com/rest"
        self.headers = headers or {}


def empty_state() -> State:
    return {"tokens": {}, "orgs": {}, "repos": {}, "faults": [], "requests": [], "next_id": 1000}


def now_iso() -> str:
    return dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_id(state: State) -> int:
    state["next_id"] += 1
    return int(state["next_id"])


def blob_sha(text: str) -> str:
    """Git's blob id of ``text``: what the contents API returns as a file's ``sha``."""
    data = text.encode("utf-8")
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


# --- tokens and organisations ------------------------------------------------------


def add_token(state: State, token: str, login: str, permissions: dict[str, str] | None = None,
              repos: list[str] | None = None) -> None:
    """A valid token. ``permissions`` None = every permission; ``repos`` None = every repo."""
    state["tokens"][token] = {"login": login, "permissions": permissions, "repos": repos}


def add_member(state: State, org: str, login: str, teams: list[str] | None = None,
               team_state: str = "active") -> None:
    entry = state["orgs"].setdefault(org, {"members": [], "teams": {}})
    if login not in entry["members"]:
        entry["members"].append(login)
    for slug in teams or []:
        entry["teams"].setdefault(slug, {})[login] = team_state


# --- repositories and commits ------------------------------------------------------


def create_repo(state: State, full_name: str, default_branch: str = "main",
                files: dict[str, str] | None = None) -> Repo:
    owner, name = full_name.split("/", 1)
    repo: Repo = {
        "id": next_id(state), "full_name": full_name, "owner": owner, "name": name,
        "default_branch": default_branch, "private": True, "branches": {}, "commits": {},
        "pulls": {}, "next_number": 1, "deployments": [], "runs": {},
    }
    state["repos"][full_name] = repo
    sha = commit(state, repo, {}, files or {"README.md": f"# {name}\n"}, "initial commit", owner)
    repo["branches"][default_branch] = sha
    return repo


def repo_of(state: State, full_name: str) -> Repo:
    repo = state["repos"].get(full_name)
    if repo is None:
        raise FakeError(404, "Not Found", "https://docs.github.com/rest/repos/repos#get-a-repository")
    return repo


def commit(state: State, repo: Repo, files: dict[str, str], changes: dict[str, str | None],
           message: str, author: str, parents: list[str] | None = None, sha: str | None = None) -> str:
    """Store a new commit: ``files`` with ``changes`` applied (None deletes a path). ``sha``
    stores it under a given id, to mirror a commit of a real git repository."""
    tree = dict(files)
    for path, text in changes.items():
        if text is None:
            tree.pop(path, None)
        else:
            tree[path] = text
    body = json.dumps([tree, parents or [], message, next_id(state)], sort_keys=True)
    sha = sha or hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()
    repo["commits"][sha] = {"files": tree, "parents": parents or [], "message": message,
                            "author": author, "date": now_iso(), "tree": tree_of(repo, tree)}
    return sha


def tree_of(repo: Repo, files: dict[str, str]) -> str:
    """The id of a tree holding ``files`` (stored so the git data API can build on it)."""
    sha = hashlib.sha1(json.dumps(files, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
    repo.setdefault("trees", {})[sha] = dict(files)
    return sha


def move_branch(repo: Repo, branch: str, sha: str) -> None:
    """Point ``branch`` at ``sha``, then settle the pull requests this may have merged.

    GitHub marks an open pull request merged once its head commit is contained in its base
    branch, e.g. when the head is pushed to the base or the head branch is force-moved onto
    a commit the base already has: a promotion branch must never be reset to its base.
    """
    repo["branches"][branch] = sha
    for pull in repo["pulls"].values():
        if pull["state"] != "open" or pull["head"] not in repo["branches"]:
            continue
        head = repo["branches"][pull["head"]]
        if head in ancestors(repo, repo["branches"][pull["base"]]):
            pull.update(state="closed", merged=True, merged_at=now_iso(), merge_commit_sha=head,
                        head_sha=head, files_at_merge=[])


def push(state: State, repo: Repo, branch: str, changes: dict[str, str | None], message: str,
         author: str, sha: str | None = None) -> str:
    """A commit on top of ``branch`` (as a ``git push`` would make); returns its sha."""
    parent = repo["branches"].get(branch)
    if parent is None:
        raise FakeError(404, f"Branch not found: {branch}")
    if sha is not None and (len(sha) != 40 or sha in repo["commits"]):
        raise FakeError(422, f"sha must be 40 hex digits and new, got {sha!r}")
    sha = commit(state, repo, repo["commits"][parent]["files"], changes, message, author, [parent], sha)
    move_branch(repo, branch, sha)
    return sha


def resolve(repo: Repo, ref: str) -> str | None:
    """A branch name, ``heads/NAME``, ``refs/heads/NAME`` or a commit sha -> commit sha."""
    name = ref.removeprefix("refs/").removeprefix("heads/")
    if name in repo["branches"]:
        return str(repo["branches"][name])
    return ref if ref in repo["commits"] else None


def ancestors(repo: Repo, sha: str) -> list[str]:
    """``sha`` and every commit reachable from it, nearest first."""
    seen: list[str] = []
    queue = [sha]
    while queue:
        current = queue.pop(0)
        if current not in seen:
            seen.append(current)
            queue.extend(repo["commits"][current]["parents"])
    return seen


def merge_base(repo: Repo, base_sha: str, head_sha: str) -> str | None:
    of_base = set(ancestors(repo, base_sha))
    return next((sha for sha in ancestors(repo, head_sha) if sha in of_base), None)


def diff(repo: Repo, old_sha: str | None, new_sha: str) -> list[dict[str, str]]:
    """Changed files between two commits, in the shape of the pull request files API."""
    old = repo["commits"][old_sha]["files"] if old_sha else {}
    new = repo["commits"][new_sha]["files"]
    changed: list[dict[str, str]] = []
    for path in sorted(set(old) | set(new)):
        if old.get(path) == new.get(path):
            continue
        status = "added" if path not in old else "removed" if path not in new else "modified"
        changed.append({"filename": path, "status": status,
                        "sha": blob_sha(new[path]) if path in new else ""})
    return changed


# --- pull requests -----------------------------------------------------------------


def pull_of(repo: Repo, number: int) -> Pull:
    pull = repo["pulls"].get(str(number))
    if pull is None:
        raise FakeError(404, "Not Found", "https://docs.github.com/rest/pulls/pulls#get-a-pull-request")
    return pull


def head_sha(repo: Repo, pull: Pull) -> str:
    """An open PR follows its branch; a closed one keeps the head it had when it closed."""
    if pull["state"] == "open" and pull["head"] in repo["branches"]:
        return str(repo["branches"][pull["head"]])
    return str(pull["head_sha"])


def pull_files(repo: Repo, pull: Pull) -> list[dict[str, str]]:
    if pull["merged"]:
        return list(pull["files_at_merge"])
    head = head_sha(repo, pull)
    base = merge_base(repo, repo["branches"][pull["base"]], head)
    return diff(repo, base, head)


def open_pull(state: State, repo: Repo, head: str, base: str, title: str, body: str, author: str) -> Pull:
    if head not in repo["branches"]:
        raise FakeError(422, "Validation Failed: head branch not found")
    if base not in repo["branches"]:
        raise FakeError(422, "Validation Failed: base branch not found")
    for other in repo["pulls"].values():
        if other["state"] == "open" and other["head"] == head and other["base"] == base:
            raise FakeError(422, "Validation Failed: A pull request already exists for "
                            f"{repo['owner']}:{head}.")
    number = repo["next_number"]
    repo["next_number"] += 1
    pull: Pull = {
        "id": next_id(state), "number": number, "title": title, "body": body, "head": head, "base": base,
        "user": author, "state": "open", "merged": False, "merged_at": None, "merged_by": None,
        "merge_commit_sha": None, "head_sha": repo["branches"][head], "files_at_merge": [],
        "reviews": [], "created_at": now_iso(),
    }
    if not pull_files(repo, pull):
        raise FakeError(422, f"Validation Failed: No commits between {base} and {head}")
    repo["pulls"][str(number)] = pull
    return pull


def add_review(state: State, repo: Repo, pull: Pull, user: str, review_state: str,
               commit_id: str | None = None, body: str = "", allow_self: bool = False) -> dict[str, Any]:
    """A submitted review. GitHub refuses an author's approval of their own pull request
    ("Can not approve your own pull request", 422); ``allow_self`` records it anyway so a
    test can prove the toolkit checks it too."""
    if review_state not in {"APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED"}:
        raise FakeError(422, f"Validation Failed: unknown review state {review_state}")
    if review_state == "APPROVED" and user == pull["user"] and not allow_self:
        raise FakeError(422, "Unprocessable Entity: Can not approve your own pull request")
    review = {"id": next_id(state), "user": user, "state": review_state,
              "commit_id": commit_id or head_sha(repo, pull), "body": body, "submitted_at": now_iso()}
    pull["reviews"].append(review)
    return review


def merge(state: State, repo: Repo, pull: Pull, by: str) -> str:
    """Merge an open pull request: a commit on the base branch with the PR's changes."""
    if pull["state"] != "open":
        raise FakeError(405, "Pull Request is not mergeable")
    head = head_sha(repo, pull)
    files = pull_files(repo, pull)
    head_files = repo["commits"][head]["files"]
    changes = {f["filename"]: head_files.get(f["filename"]) for f in files}
    base_tip = repo["branches"][pull["base"]]
    sha = commit(state, repo, repo["commits"][base_tip]["files"], changes,
                 f"Merge pull request #{pull['number']}", by, [base_tip, head])
    repo["branches"][pull["base"]] = sha
    pull.update(state="closed", merged=True, merged_at=now_iso(), merged_by=by, merge_commit_sha=sha,
                head_sha=head, files_at_merge=files)
    return sha
