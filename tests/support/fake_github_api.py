"""The REST endpoints of the fake GitHub API: GitHub's documented shapes and status codes
for exactly the calls the toolkit makes.

Each route names the GitHub App permission it needs (``contents``, ``pull_requests``,
``members``, ``deployments``, ``actions``), so a token seeded without it gets GitHub's
403 "Resource not accessible by integration". References:

- contents: https://docs.github.com/rest/repos/contents (GET returns base64 ``content``
  and the blob ``sha``; PUT needs the current ``sha`` to replace a file: 409 when it does
  not match, 422 when it is missing)
- git refs: https://docs.github.com/rest/git/refs (PATCH without ``force`` refuses a
  non-fast-forward with 422; POST of an existing ref is 422 "Reference already exists");
  git trees and commits: https://docs.github.com/rest/git/trees, .../git/commits (objects
  only, no branch moves). An open pull request whose head the base branch comes to contain
  is marked merged, as GitHub does (``fake_github_model.move_branch``).
- pulls: https://docs.github.com/rest/pulls/pulls (list filters ``head=OWNER:BRANCH``,
  ``state``, ``base``; a second open PR for the same head is 422)
- reviews: https://docs.github.com/rest/pulls/reviews (chronological; ``state`` is
  APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED or PENDING; ``commit_id`` is the head
  the review was submitted on)
- members: https://docs.github.com/rest/orgs/members#check-organization-membership-for-a-user
  (204 member, 404 not a member, 302 when the requester is not an organisation member);
  team memberships https://docs.github.com/rest/teams/members (200 with ``state``
  active|pending, 404 otherwise)
- deployments: https://docs.github.com/rest/deployments/deployments and
  .../deployments/statuses (lists are newest first)
- run approvals: https://docs.github.com/rest/actions/workflow-runs#get-the-review-history-for-a-workflow-run
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tests.support import fake_github_model as m


@dataclass
class Call:
    state: m.State
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]
    login: str
    api_url: str
    web_url: str
    token: dict[str, Any] = field(default_factory=dict)

    def repo(self) -> m.Repo:
        return m.repo_of(self.state, f"{self.params['owner']}/{self.params['repo']}")


Answer = tuple[int, Any, dict[str, str]]
Handler = Callable[[Call], Answer]


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    return status, body, headers or {}


def paginate(call: Call, items: list[Any]) -> Answer:
    """One page of ``items`` with GitHub's ``Link`` header (``per_page`` max 100, default 30)."""
    per_page = min(int(call.query.get("per_page", "30")), 100)
    page = max(int(call.query.get("page", "1")), 1)
    last = max((len(items) + per_page - 1) // per_page, 1)
    links = []
    for rel, number in (("next", page + 1), ("last", last)):
        if page < last:
            query = urlencode({**call.query, "page": str(number), "per_page": str(per_page)})
            links.append(f'<{call.api_url}{call.path}?{query}>; rel="{rel}"')
    headers = {"Link": ", ".join(links)} if links else {}
    return 200, items[(page - 1) * per_page : page * per_page], headers


# --- JSON shapes -------------------------------------------------------------------


def user(login: str | None) -> dict[str, Any] | None:
    return {"login": login, "type": "Bot" if login and login.endswith("[bot]") else "User"} if login else None


def repo_json(call: Call, repo: m.Repo) -> dict[str, Any]:
    return {"id": repo["id"], "name": repo["name"], "full_name": repo["full_name"],
            "owner": user(repo["owner"]), "private": repo["private"],
            "default_branch": repo["default_branch"], "html_url": f"{call.web_url}/{repo['full_name']}"}


def pull_json(call: Call, repo: m.Repo, pull: m.Pull) -> dict[str, Any]:
    full = repo["full_name"]
    base_sha = repo["branches"].get(pull["base"], "")
    return {
        "id": pull["id"], "number": pull["number"], "state": pull["state"], "title": pull["title"],
        "body": pull["body"], "user": user(pull["user"]), "created_at": pull["created_at"],
        "html_url": f"{call.web_url}/{full}/pull/{pull['number']}",
        "url": f"{call.api_url}/repos/{full}/pulls/{pull['number']}",
        "merged": pull["merged"], "merged_at": pull["merged_at"], "merged_by": user(pull["merged_by"]),
        "merge_commit_sha": pull["merge_commit_sha"],
        "head": {"ref": pull["head"], "sha": m.head_sha(repo, pull),
                 "label": f"{repo['owner']}:{pull['head']}", "repo": {"full_name": full}},
        "base": {"ref": pull["base"], "sha": base_sha, "label": f"{repo['owner']}:{pull['base']}",
                 "repo": {"full_name": full}},
    }


def review_json(call: Call, repo: m.Repo, pull: m.Pull, review: dict[str, Any]) -> dict[str, Any]:
    url = f"{call.web_url}/{repo['full_name']}/pull/{pull['number']}#pullrequestreview-{review['id']}"
    return {"id": review["id"], "user": user(review["user"]), "state": review["state"],
            "commit_id": review["commit_id"], "body": review["body"],
            "submitted_at": review["submitted_at"], "html_url": url}


def deployment_json(call: Call, repo: m.Repo, dep: dict[str, Any]) -> dict[str, Any]:
    url = f"{call.api_url}/repos/{repo['full_name']}/deployments/{dep['id']}"
    return {**{k: v for k, v in dep.items() if k != "statuses"}, "creator": user(dep["creator"]),
            "url": url, "statuses_url": f"{url}/statuses"}


# --- contents and refs -------------------------------------------------------------


def get_repo(call: Call) -> Answer:
    return ok(repo_json(call, call.repo()))


def get_contents(call: Call) -> Answer:
    repo = call.repo()
    sha = m.resolve(repo, call.query.get("ref") or repo["default_branch"])
    files = repo["commits"][sha]["files"] if sha else {}
    path = call.params["path"]
    if path not in files:
        raise m.FakeError(404, "Not Found", "https://docs.github.com/rest/repos/contents#get-repository-content")
    text = files[path]
    return ok({"type": "file", "encoding": "base64", "path": path, "name": path.rsplit("/", 1)[-1],
               "sha": m.blob_sha(text), "size": len(text.encode()),
               "content": base64.b64encode(text.encode()).decode(),
               "html_url": f"{call.web_url}/{repo['full_name']}/blob/{sha}/{path}"})


def put_contents(call: Call) -> Answer:
    repo, path, body = call.repo(), call.params["path"], call.body
    branch = body.get("branch") or repo["default_branch"]
    tip = repo["branches"].get(branch)
    if tip is None:
        raise m.FakeError(404, f"Branch {branch} not found")
    current = repo["commits"][tip]["files"].get(path)
    if current is not None and "sha" not in body:
        raise m.FakeError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
    if current is not None and body["sha"] != m.blob_sha(current):
        raise m.FakeError(409, f"{path} does not match {body['sha']}")
    text = base64.b64decode(body["content"]).decode("utf-8")
    sha = m.push(call.state, repo, branch, {path: text}, body.get("message", ""), call.login)
    return ok({"content": {"path": path, "sha": m.blob_sha(text)}, "commit": {"sha": sha}},
              201 if current is None else 200)


def ref_json(repo: m.Repo, branch: str) -> dict[str, Any]:
    return {"ref": f"refs/heads/{branch}", "object": {"type": "commit", "sha": repo["branches"][branch]}}


def get_ref(call: Call) -> Answer:
    repo, branch = call.repo(), call.params["branch"]
    if branch not in repo["branches"]:
        raise m.FakeError(404, "Not Found", "https://docs.github.com/rest/git/refs#get-a-reference")
    return ok(ref_json(repo, branch))


def create_ref(call: Call) -> Answer:
    repo, ref, sha = call.repo(), str(call.body.get("ref", "")), call.body.get("sha")
    if not ref.startswith("refs/heads/") or sha not in repo["commits"]:
        raise m.FakeError(422, "Validation Failed: ref must be refs/heads/NAME and sha a known commit")
    branch = ref.removeprefix("refs/heads/")
    if branch in repo["branches"]:
        raise m.FakeError(422, "Reference already exists")
    repo["branches"][branch] = sha
    return ok(ref_json(repo, branch), 201)


def update_ref(call: Call) -> Answer:
    repo, branch, sha = call.repo(), call.params["branch"], call.body.get("sha")
    if branch not in repo["branches"]:
        raise m.FakeError(422, "Reference does not exist")
    if sha not in repo["commits"]:
        raise m.FakeError(422, "Object does not exist")
    fast_forward = repo["branches"][branch] in m.ancestors(repo, sha)
    if not fast_forward and not call.body.get("force"):
        raise m.FakeError(422, "Update is not a fast forward")
    m.move_branch(repo, branch, sha)
    return ok(ref_json(repo, branch))


def get_commit(call: Call) -> Answer:
    repo, sha = call.repo(), call.params["sha"]
    if sha not in repo["commits"]:
        raise m.FakeError(404, "Not Found", "https://docs.github.com/rest/git/commits#get-a-commit-object")
    data = repo["commits"][sha]
    return ok({"sha": sha, "message": data["message"], "tree": {"sha": data["tree"]},
               "parents": [{"sha": p} for p in data["parents"]]})


def create_tree(call: Call) -> Answer:
    """``base_tree`` plus entries with inline ``content`` (or ``sha: null`` to delete)."""
    repo, b = call.repo(), call.body
    files = dict(repo.get("trees", {}).get(b.get("base_tree", ""), {}))
    if b.get("base_tree") and b["base_tree"] not in repo.get("trees", {}):
        raise m.FakeError(422, "Invalid tree info: base_tree not found")
    for entry in b.get("tree", []):
        if entry.get("type", "blob") != "blob" or entry.get("mode", "100644") != "100644":
            raise m.FakeError(422, "this fake takes regular file blobs only")
        if "content" in entry:
            files[entry["path"]] = entry["content"]
        elif entry.get("sha") is None:
            files.pop(entry["path"], None)
    return ok({"sha": m.tree_of(repo, files)}, 201)


def create_commit(call: Call) -> Answer:
    """A commit object only: no branch moves (https://docs.github.com/rest/git/commits)."""
    repo, b = call.repo(), call.body
    tree = repo.get("trees", {}).get(b.get("tree", ""))
    parents = list(b.get("parents", []))
    if tree is None or any(p not in repo["commits"] for p in parents):
        raise m.FakeError(422, "Validation Failed: tree or parent not found")
    sha = m.commit(call.state, repo, tree, {}, str(b.get("message", "")), call.login, parents)
    data = repo["commits"][sha]
    return ok({"sha": sha, "tree": {"sha": data["tree"]}, "parents": [{"sha": p} for p in parents]}, 201)


# --- pulls and reviews -------------------------------------------------------------


def list_pulls(call: Call) -> Answer:
    repo, q = call.repo(), call.query
    wanted = q.get("state", "open")
    pulls = [p for p in repo["pulls"].values() if wanted == "all" or p["state"] == wanted]
    if "head" in q:
        owner, _, branch = q["head"].partition(":")
        pulls = [p for p in pulls if owner == repo["owner"] and p["head"] == branch]
    if "base" in q:
        pulls = [p for p in pulls if p["base"] == q["base"]]
    pulls.sort(key=lambda p: -p["number"])
    return paginate(call, [pull_json(call, repo, p) for p in pulls])


def create_pull(call: Call) -> Answer:
    repo, b = call.repo(), call.body
    head = str(b.get("head", "")).split(":")[-1]
    pull = m.open_pull(call.state, repo, head, str(b.get("base", "")), str(b.get("title", "")),
                       str(b.get("body") or ""), call.login)
    return ok(pull_json(call, repo, pull), 201)


def update_pull(call: Call) -> Answer:
    repo = call.repo()
    pull = m.pull_of(repo, int(call.params["number"]))
    for key in ("title", "body"):
        if key in call.body:
            pull[key] = call.body[key]
    if call.body.get("state") in {"open", "closed"} and not pull["merged"]:
        pull["head_sha"] = m.head_sha(repo, pull)
        pull["state"] = call.body["state"]
    return ok(pull_json(call, repo, pull))


def get_pull(call: Call) -> Answer:
    repo = call.repo()
    return ok(pull_json(call, repo, m.pull_of(repo, int(call.params["number"]))))


def pull_files(call: Call) -> Answer:
    repo = call.repo()
    return paginate(call, m.pull_files(repo, m.pull_of(repo, int(call.params["number"]))))


def pull_reviews(call: Call) -> Answer:
    repo = call.repo()
    pull = m.pull_of(repo, int(call.params["number"]))
    return paginate(call, [review_json(call, repo, pull, r) for r in pull["reviews"]])


# --- organisations -----------------------------------------------------------------


def check_member(call: Call) -> Answer:
    org = call.state["orgs"].get(call.params["org"], {"members": []})
    if call.token.get("outsider"):
        location = f"{call.api_url}/orgs/{call.params['org']}/public_members/{call.params['user']}"
        return 302, None, {"Location": location}
    if call.params["user"] in org["members"]:
        return 204, None, {}
    raise m.FakeError(404, "User is not a member of the organization")


def team_membership(call: Call) -> Answer:
    org = call.state["orgs"].get(call.params["org"], {"teams": {}})
    team = org["teams"].get(call.params["team"])
    if team is None or call.params["user"] not in team:
        raise m.FakeError(404, "Not Found", "https://docs.github.com/rest/teams/members")
    return ok({"state": team[call.params["user"]], "role": "member",
               "url": f"{call.api_url}{call.path}"})


# --- deployments and runs ----------------------------------------------------------


def list_deployments(call: Call) -> Answer:
    repo, q = call.repo(), call.query
    deps = [d for d in reversed(repo["deployments"])
            if all(q[k] == d[k] for k in ("sha", "ref", "environment") if k in q)]
    return paginate(call, [deployment_json(call, repo, d) for d in deps])


def create_deployment(call: Call) -> Answer:
    repo, b = call.repo(), call.body
    ref = str(b.get("ref", ""))
    sha = m.resolve(repo, ref)
    if sha is None:
        raise m.FakeError(422, f"No ref found for: {ref}")
    if b.get("auto_merge", True) or b.get("required_contexts") is None:
        raise m.FakeError(409, "this fake models an Ops repository without status checks: "
                          "send auto_merge=false and required_contexts=[]")
    dep = {"id": m.next_id(call.state), "sha": sha, "ref": ref, "task": b.get("task", "deploy"),
           "environment": b.get("environment", "production"), "payload": b.get("payload") or {},
           "description": b.get("description"), "creator": call.login, "created_at": m.now_iso(),
           "statuses": []}
    repo["deployments"].append(dep)
    return ok(deployment_json(call, repo, dep), 201)


def deployment_of(call: Call) -> dict[str, Any]:
    found = [d for d in call.repo()["deployments"] if str(d["id"]) == call.params["id"]]
    if not found:
        raise m.FakeError(404, "Not Found")
    return found[0]


STATUS_STATES = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}


def create_status(call: Call) -> Answer:
    dep, b = deployment_of(call), call.body
    if b.get("state") not in STATUS_STATES:
        raise m.FakeError(422, f"Validation Failed: state must be one of {sorted(STATUS_STATES)}")
    status = {"id": m.next_id(call.state), "state": b["state"], "description": b.get("description", ""),
              "environment_url": b.get("environment_url", ""), "log_url": b.get("log_url", ""),
              "creator": user(call.login), "created_at": m.now_iso()}
    if len(status["description"]) > 140:
        raise m.FakeError(422, "Validation Failed: description is too long (maximum is 140 characters)")
    dep["statuses"].append(status)
    return ok(status, 201)


def list_statuses(call: Call) -> Answer:
    return paginate(call, list(reversed(deployment_of(call)["statuses"])))


def run_of(call: Call) -> dict[str, Any]:
    run = call.repo()["runs"].get(call.params["run"])
    if run is None:
        raise m.FakeError(404, "Not Found")
    return dict(run)


def get_run(call: Call) -> Answer:
    run = run_of(call)
    return ok({k: v for k, v in run.items() if k != "approvals"})


def run_approvals(call: Call) -> Answer:
    return ok([{**a, "user": user(a["user"])} for a in run_of(call)["approvals"]])


REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
ROUTES: list[tuple[str, str, tuple[str, str] | None, Handler]] = [
    ("GET", REPO, None, get_repo),
    ("GET", REPO + r"/contents/(?P<path>.+)", ("contents", "read"), get_contents),
    ("PUT", REPO + r"/contents/(?P<path>.+)", ("contents", "write"), put_contents),
    ("GET", REPO + r"/git/ref/heads/(?P<branch>.+)", ("contents", "read"), get_ref),
    ("POST", REPO + r"/git/refs", ("contents", "write"), create_ref),
    ("PATCH", REPO + r"/git/refs/heads/(?P<branch>.+)", ("contents", "write"), update_ref),
    ("GET", REPO + r"/git/commits/(?P<sha>[0-9a-f]{40})", ("contents", "read"), get_commit),
    ("POST", REPO + r"/git/trees", ("contents", "write"), create_tree),
    ("POST", REPO + r"/git/commits", ("contents", "write"), create_commit),
    ("GET", REPO + r"/pulls", ("pull_requests", "read"), list_pulls),
    ("POST", REPO + r"/pulls", ("pull_requests", "write"), create_pull),
    ("GET", REPO + r"/pulls/(?P<number>\d+)", ("pull_requests", "read"), get_pull),
    ("PATCH", REPO + r"/pulls/(?P<number>\d+)", ("pull_requests", "write"), update_pull),
    ("GET", REPO + r"/pulls/(?P<number>\d+)/files", ("pull_requests", "read"), pull_files),
    ("GET", REPO + r"/pulls/(?P<number>\d+)/reviews", ("pull_requests", "read"), pull_reviews),
    ("GET", r"/orgs/(?P<org>[^/]+)/members/(?P<user>[^/]+)", ("members", "read"), check_member),
    ("GET", r"/orgs/(?P<org>[^/]+)/teams/(?P<team>[^/]+)/memberships/(?P<user>[^/]+)",
     ("members", "read"), team_membership),
    ("GET", REPO + r"/deployments", ("deployments", "read"), list_deployments),
    ("POST", REPO + r"/deployments", ("deployments", "write"), create_deployment),
    ("GET", REPO + r"/deployments/(?P<id>\d+)/statuses", ("deployments", "read"), list_statuses),
    ("POST", REPO + r"/deployments/(?P<id>\d+)/statuses", ("deployments", "write"), create_status),
    ("GET", REPO + r"/actions/runs/(?P<run>\d+)", ("actions", "read"), get_run),
    ("GET", REPO + r"/actions/runs/(?P<run>\d+)/approvals", ("actions", "read"), run_approvals),
]


def route(method: str, path: str) -> tuple[Handler, tuple[str, str] | None, dict[str, str]]:
    allowed = False
    for verb, pattern, permission, handler in ROUTES:
        match = re.fullmatch(pattern, path)
        if match:
            allowed = True
            if verb == method:
                return handler, permission, match.groupdict()
    if allowed:
        raise m.FakeError(405, "Method Not Allowed")
    raise m.FakeError(404, "Not Found")
