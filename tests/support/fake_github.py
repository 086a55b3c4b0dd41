"""A fake of GitHub's REST API as a real HTTP server, for the GitHub tests and the
workflow end-to-end tests.

Run it next to ``act`` (prints its base URL on one line, then serves until killed)::

    python3 -m tests.support.fake_github --port 0 --state /tmp/github.json [--prefix /api/v3]

or in-process (``FakeGitHub().start()``; the ``fake_github`` fixture in
``tests/conftest.py``). Point the toolkit at it with ``GITHUB_API_URL=<base URL>``.
``--state FILE`` loads the data from FILE if it exists and writes it back after every
request, so another process can read what happened. ``--prefix`` serves the API under a
path, like GitHub Enterprise Server's ``/api/v3``.

Every API request needs ``Authorization: Bearer TOKEN`` (or ``token TOKEN``) with a seeded
token, else 401 "Bad credentials". Endpoints and their shapes: see ``fake_github_api``.

Seeding and reading back (JSON bodies; no token needed; all under the prefix)::

    POST /_fake/tokens          {"token", "login", "permissions"?: {"contents": "write",
                                 "pull_requests": "read", "members": "read", "deployments":
                                 "write", "actions": "read"} (omitted = every permission),
                                 "repos"?: ["owner/name"] (omitted = every repository; others
                                 answer 404), "outsider"?: true (membership checks answer 302)}
    POST /_fake/orgs/ORG/members {"login", "teams"?: ["slug"], "team_state"?: "active"|"pending"}
    POST /_fake/repos           {"full_name", "default_branch"?: "main", "files"?: {path: text}}
    POST /_fake/repos/O/R/commits  {"branch"?: "main", "files"?: {path: text|null}, "message"?,
                                 "author"?, "sha"?} -> {"sha"}   (a push; null deletes the path;
                                 "sha" mirrors a commit of a real repository, e.g. the Dev commit
                                 a deployment status is reported on)
    GET  /_fake/repos/O/R/files?ref=BRANCH|SHA  -> {path: text}
    GET  /_fake/repos/O/R/pulls/N  -> the stored pull request, with its reviews
    POST /_fake/repos/O/R/pulls/N/reviews {"user", "state": APPROVED|CHANGES_REQUESTED|COMMENTED|
                                 DISMISSED, "commit_id"? (default: the head now), "body"?,
                                 "allow_self"?: true (record an author's approval GitHub refuses)}
    POST /_fake/repos/O/R/pulls/N/merge   {"by"?} -> {"sha"} (the merge commit on the base)
    POST /_fake/repos/O/R/runs  {"id"?, "head_sha"?, "approvals": [{"user", "state": approved|
                                 rejected, "environments": ["prod"], "comment"?}]} -> the run
    POST /_fake/faults          {"path": regex, "status", "method"?, "times"?: 1, "retry_after"?,
                                 "message"?} (answer the next matching requests with an error)
    GET  /_fake/requests        -> [{"method", "path", "query", "accept", "api_version", "auth"}]
    GET  /_fake/state           -> everything;  POST /_fake/reset -> empty state
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.support import fake_github_api as api
from tests.support import fake_github_model as m

PERMISSION_LEVELS = {"read": 1, "write": 2}


class FakeGitHub:
    """The server and its data. Seed with the methods below or the ``/_fake`` endpoints."""

    def __init__(self, state_file: Path | None = None, prefix: str = "") -> None:
        self.state_file = state_file
        self.prefix = prefix.rstrip("/")
        self.lock = threading.RLock()
        self.state: m.State = m.empty_state()
        if state_file is not None and state_file.exists():
            self.state = json.loads(state_file.read_text(encoding="utf-8"))
        self._server: ThreadingHTTPServer | None = None
        self.web_url = ""

    # --- lifecycle ---------------------------------------------------------------

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.web_url = f"http://{host}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-github").start()
        return self.url

    @property
    def url(self) -> str:
        """The API base URL (what ``GITHUB_API_URL`` should be)."""
        return self.web_url + self.prefix

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def save(self) -> None:
        if self.state_file is not None:
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state, indent=1), encoding="utf-8")
            os.replace(tmp, self.state_file)

    # --- seeding (same effects as the /_fake endpoints) -------------------------

    def token(self, token: str, login: str, permissions: dict[str, str] | None = None,
              repos: list[str] | None = None, outsider: bool = False) -> None:
        with self.lock:
            m.add_token(self.state, token, login, permissions, repos)
            self.state["tokens"][token]["outsider"] = outsider

    def member(self, org: str, login: str, teams: list[str] | None = None,
               team_state: str = "active") -> None:
        with self.lock:
            m.add_member(self.state, org, login, teams, team_state)

    def repo(self, full_name: str, files: dict[str, str] | None = None, default_branch: str = "main") -> None:
        with self.lock:
            m.create_repo(self.state, full_name, default_branch, files)

    def push(self, full_name: str, branch: str, files: dict[str, str | None], message: str = "push",
             author: str = "someone", sha: str | None = None) -> str:
        with self.lock:
            return m.push(self.state, m.repo_of(self.state, full_name), branch, files, message, author, sha)

    def review(self, full_name: str, number: int, user: str, state: str = "APPROVED",
               commit_id: str | None = None, allow_self: bool = False) -> dict[str, Any]:
        with self.lock:
            repo = m.repo_of(self.state, full_name)
            return m.add_review(self.state, repo, m.pull_of(repo, number), user, state, commit_id,
                                allow_self=allow_self)

    def merge(self, full_name: str, number: int, by: str = "ops-lead") -> str:
        with self.lock:
            repo = m.repo_of(self.state, full_name)
            return m.merge(self.state, repo, m.pull_of(repo, number), by)

    def run(self, full_name: str, approvals: list[dict[str, Any]], run_id: int | None = None,
            head_sha: str = "") -> dict[str, Any]:
        with self.lock:
            repo = m.repo_of(self.state, full_name)
            number = run_id or m.next_id(self.state)
            run = {"id": number, "head_sha": head_sha or repo["branches"][repo["default_branch"]],
                   "status": "waiting", "name": "promote",
                   "html_url": f"{self.web_url}/{full_name}/actions/runs/{number}",
                   "approvals": [{"environments": [{"name": e} for e in a.get("environments", [])],
                                  "state": a.get("state", "approved"), "comment": a.get("comment", ""),
                                  "user": a["user"]} for a in approvals]}
            repo["runs"][str(number)] = run
            return run

    def fault(self, path: str, status: int, *, times: int = 1, method: str | None = None,
              retry_after: int | None = None, message: str = "") -> None:
        with self.lock:
            self.state["faults"].append({"path": path, "status": status, "times": times, "method": method,
                                         "retry_after": retry_after, "message": message})

    def files(self, full_name: str, ref: str) -> dict[str, str]:
        repo = m.repo_of(self.state, full_name)
        sha = m.resolve(repo, ref)
        return dict(repo["commits"][sha]["files"]) if sha else {}

    def pull(self, full_name: str, number: int) -> dict[str, Any]:
        repo = m.repo_of(self.state, full_name)
        pull = dict(m.pull_of(repo, number))
        pull["head_sha"] = m.head_sha(repo, pull)
        return pull

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self.state["requests"])

    # --- request handling ---------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> api.Answer:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        if not path.startswith(self.prefix):
            raise m.FakeError(404, "Not Found")
        path = path[len(self.prefix):] or "/"
        query = dict(parse_qsl(parts.query))
        payload = json.loads(body) if body.strip() else {}
        with self.lock:
            try:
                if path.startswith("/_fake/"):
                    return self._admin(method, path, query, payload)
                self._log(method, path, query, headers)
                return self._api(method, path, query, payload, headers)
            finally:
                self.save()

    def _log(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> None:
        self.state["requests"].append({
            "method": method, "path": path, "query": query, "accept": headers.get("accept", ""),
            "api_version": headers.get("x-github-api-version", ""), "auth": "authorization" in headers})
        del self.state["requests"][:-500]

    def _api(self, method: str, path: str, query: dict[str, str], payload: dict[str, Any],
             headers: dict[str, str]) -> api.Answer:
        self._inject_fault(method, path)
        token = self._authenticate(headers)
        handler, permission, params = api.route(method, path)
        self._authorise(token, permission, params)
        call = api.Call(self.state, method, path, params, query, payload, token["login"],
                        self.url, self.web_url, token)
        return handler(call)

    def _inject_fault(self, method: str, path: str) -> None:
        for fault in self.state["faults"]:
            if (fault["method"] in (None, method)) and re.search(fault["path"], path):
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self.state["faults"].remove(fault)
                retry = fault["retry_after"]
                headers = {"Retry-After": str(retry)} if retry is not None else {}
                raise m.FakeError(fault["status"], fault["message"] or "injected failure", headers=headers)

    def _authenticate(self, headers: dict[str, str]) -> dict[str, Any]:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        token = self.state["tokens"].get(value.strip()) if scheme.lower() in {"bearer", "token"} else None
        if token is None:
            raise m.FakeError(401, "Bad credentials", "https://docs.github.com/rest")
        return dict(token)

    def _authorise(self, token: dict[str, Any], permission: tuple[str, str] | None,
                   params: dict[str, str]) -> None:
        repos = token.get("repos")
        if repos is not None and "owner" in params and f"{params['owner']}/{params['repo']}" not in repos:
            raise m.FakeError(404, "Not Found")
        granted = token.get("permissions")
        if permission is None or granted is None:
            return
        kind, level = permission
        if PERMISSION_LEVELS.get(granted.get(kind, ""), 0) < PERMISSION_LEVELS[level]:
            raise m.FakeError(403, "Resource not accessible by integration",
                              "https://docs.github.com/rest/overview/permissions-required-for-github-apps")

    def _admin(self, method: str, path: str, query: dict[str, str], b: dict[str, Any]) -> api.Answer:
        parts = path.strip("/").split("/")[1:]
        if method == "GET" and parts == ["state"]:
            return api.ok(self.state)
        if method == "GET" and parts == ["requests"]:
            return api.ok(self.requests)
        if method == "POST" and parts == ["reset"]:
            self.state = m.empty_state()
            return api.ok({})
        if method == "POST" and parts == ["tokens"]:
            self.token(b["token"], b["login"], b.get("permissions"), b.get("repos"), bool(b.get("outsider")))
            return api.ok({}, 201)
        if method == "POST" and parts == ["faults"]:
            self.fault(b["path"], int(b["status"]), times=int(b.get("times", 1)), method=b.get("method"),
                       retry_after=b.get("retry_after"), message=b.get("message", ""))
            return api.ok({}, 201)
        if method == "POST" and parts == ["repos"]:
            self.repo(b["full_name"], b.get("files"), b.get("default_branch", "main"))
            return api.ok({}, 201)
        if method == "POST" and len(parts) == 3 and parts[0] == "orgs" and parts[2] == "members":
            self.member(parts[1], b["login"], b.get("teams"), b.get("team_state", "active"))
            return api.ok({}, 201)
        if parts[:1] == ["repos"] and len(parts) >= 4:
            return self._admin_repo(method, f"{parts[1]}/{parts[2]}", parts[3:], query, b)
        raise m.FakeError(404, f"no fake endpoint {method} {path}")

    def _admin_repo(self, method: str, repo: str, rest: list[str], query: dict[str, str],
                    b: dict[str, Any]) -> api.Answer:
        if method == "POST" and rest == ["commits"]:
            sha = self.push(repo, b.get("branch", "main"), b.get("files", {}), b.get("message", "push"),
                            b.get("author", "someone"), b.get("sha"))
            return api.ok({"sha": sha}, 201)
        if method == "GET" and rest == ["files"]:
            return api.ok(self.files(repo, query.get("ref", "main")))
        if method == "POST" and rest == ["runs"]:
            return api.ok(self.run(repo, b.get("approvals", []), b.get("id"), b.get("head_sha", "")), 201)
        if len(rest) >= 2 and rest[0] == "pulls":
            number = int(rest[1])
            if method == "GET" and len(rest) == 2:
                return api.ok(self.pull(repo, number))
            if method == "POST" and rest[2:] == ["reviews"]:
                review = self.review(repo, number, b["user"], b.get("state", "APPROVED"), b.get("commit_id"),
                                     bool(b.get("allow_self")))
                return api.ok(review, 201)
            if method == "POST" and rest[2:] == ["merge"]:
                return api.ok({"sha": self.merge(repo, number, b.get("by", "ops-lead"))})
        raise m.FakeError(404, f"no fake endpoint {method} /_fake/repos/{repo}/{'/'.join(rest)}")


class _Handler(BaseHTTPRequestHandler):
    owner: FakeGitHub
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, payload, extra = self.owner.handle(self.command, self.path, headers, body)
        except m.FakeError as exc:
            status, extra = exc.status, exc.headers
            payload = {"message": exc.message, "documentation_url": exc.docs}
        except (KeyError, ValueError, TypeError) as exc:
            status, extra, payload = 400, {}, {"message": f"Problems parsing JSON: {exc!r}"}
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``/_fake/requests`` instead of an access log."""


@contextmanager
def running(state_file: Path | None = None, prefix: str = "") -> Iterator[FakeGitHub]:
    """A started fake, stopped on exit."""
    fake = FakeGitHub(state_file, prefix)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.support.fake_github", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free one)")
    parser.add_argument("--state", type=Path, help="JSON file to load from and save to after every request")
    parser.add_argument("--prefix", default="", help="serve the API under this path, e.g. /api/v3")
    args = parser.parse_args(argv)
    fake = FakeGitHub(args.state, args.prefix)
    print(fake.start(args.port), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
