"""The fake GitHub API keeps GitHub's documented refusals, so the tests that use it (and the
workflow end-to-end tests) cannot pass against behaviour GitHub would not show."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.support.fake_github import FakeGitHub

AUTH = {"Authorization": "Bearer t"}


@pytest.fixture
def api(fake_github: FakeGitHub) -> httpx.Client:
    fake_github.token("t", "bot")
    fake_github.repo("o/r", {"a.txt": "one\n"})
    return httpx.Client(base_url=fake_github.url, headers=AUTH)


def put(api: httpx.Client, text: str, **extra: str) -> httpx.Response:
    body = {"message": "m", "content": base64.b64encode(text.encode()).decode(), **extra}
    return api.put("/repos/o/r/contents/a.txt", json=body)


def test_replacing_a_file_needs_its_current_blob_sha(api: httpx.Client) -> None:
    assert put(api, "two\n").status_code == 422  # "sha" wasn't supplied
    assert put(api, "two\n", sha="0" * 40).status_code == 409
    current = api.get("/repos/o/r/contents/a.txt").json()
    assert base64.b64decode(current["content"]) == b"one\n"
    assert put(api, "two\n", sha=current["sha"]).status_code == 200


def test_moving_a_branch_backwards_needs_force(api: httpx.Client, fake_github: FakeGitHub) -> None:
    first = fake_github.state["repos"]["o/r"]["branches"]["main"]
    fake_github.push("o/r", "main", {"b.txt": "b"})
    assert api.patch("/repos/o/r/git/refs/heads/main", json={"sha": first}).status_code == 422
    assert api.patch("/repos/o/r/git/refs/heads/main", json={"sha": first, "force": True}).status_code == 200
    assert api.post("/repos/o/r/git/refs", json={"ref": "refs/heads/main", "sha": first}).status_code == 422


def test_one_open_pull_request_per_head_none_without_changes(
    api: httpx.Client, fake_github: FakeGitHub
) -> None:
    main = fake_github.state["repos"]["o/r"]["branches"]["main"]
    assert api.post("/repos/o/r/git/refs", json={"ref": "refs/heads/x", "sha": main}).status_code == 201
    pull = {"head": "x", "base": "main", "title": "t"}
    assert api.post("/repos/o/r/pulls", json=pull).status_code == 422  # no commits between
    fake_github.push("o/r", "x", {"b.txt": "b"})
    assert api.post("/repos/o/r/pulls", json=pull).status_code == 201
    assert api.post("/repos/o/r/pulls", json=pull).status_code == 422  # already exists


def test_an_author_cannot_approve_their_own_pull_request(api: httpx.Client, fake_github: FakeGitHub) -> None:
    main = fake_github.state["repos"]["o/r"]["branches"]["main"]
    api.post("/repos/o/r/git/refs", json={"ref": "refs/heads/x", "sha": main})
    fake_github.push("o/r", "x", {"b.txt": "b"})
    number = api.post("/repos/o/r/pulls", json={"head": "x", "base": "main", "title": "t"}).json()["number"]
    review = {"user": "bot", "state": "APPROVED"}
    seeded = httpx.post(f"{fake_github.url}/_fake/repos/o/r/pulls/{number}/reviews", json=review)
    assert seeded.status_code == 422 and "Can not approve your own pull request" in seeded.json()["message"]
    assert api.get(f"/repos/o/r/pulls/{number}/reviews").json() == []


def test_a_token_without_a_permission_gets_githubs_403(fake_github: FakeGitHub) -> None:
    fake_github.repo("o/r")
    fake_github.token("ro", "bot", permissions={"pull_requests": "read"})
    answer = httpx.post(f"{fake_github.url}/repos/o/r/pulls", json={}, headers={"Authorization": "token ro"})
    assert answer.status_code == 403 and answer.json()["message"] == "Resource not accessible by integration"


def test_a_head_branch_moved_onto_its_base_marks_the_pull_request_merged(
    api: httpx.Client, fake_github: FakeGitHub
) -> None:
    main = fake_github.state["repos"]["o/r"]["branches"]["main"]
    api.post("/repos/o/r/git/refs", json={"ref": "refs/heads/x", "sha": main})
    fake_github.push("o/r", "x", {"b.txt": "b"})
    number = api.post("/repos/o/r/pulls", json={"head": "x", "base": "main", "title": "t"}).json()["number"]
    assert api.patch("/repos/o/r/git/refs/heads/x", json={"sha": main, "force": True}).status_code == 200
    pull = api.get(f"/repos/o/r/pulls/{number}").json()
    assert pull["state"] == "closed" and pull["merged"] is True  # as GitHub does: never reset a PR's head
