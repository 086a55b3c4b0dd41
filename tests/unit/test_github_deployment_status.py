"""``pipeline deployment-status``: one GitHub deployment per (commit, environment) on the
Dev repository, reused by later statuses; against the fake GitHub API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.fake_github import FakeGitHub
from tests.unit.support.github import DEV_REPO, World, make_world, outputs


@pytest.fixture
def world(tmp_path: Path, fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.delenv("PIPELINE_LOCAL_HOME", raising=False)
    return make_world(tmp_path / "ops", fake_github)


def status(world: World, commit: str, state: str, *extra: str, **env: str) -> tuple[int, str, str]:
    return world.cli(
        "deployment-status", "--repo", DEV_REPO, "--commit", commit, "--env", "prod", "--state", state,
        "--json", *extra, **env,
    )


def test_creates_a_deployment_of_the_commit_then_adds_statuses_to_it(world: World, tmp_path: Path) -> None:
    commit = world.github.state["repos"][DEV_REPO]["branches"]["main"]
    run_url = "https://github.example/shop-ops/deployments/actions/runs/9"
    digest = "sha256:" + "1" * 64
    payload = ("--service", "orders", "--digest", digest)
    code, out, err = status(world, commit, "in_progress", "--url", run_url, *payload)
    assert code == 0, err
    first = json.loads(out)
    out_file = tmp_path / "out"
    out_file.touch()
    extra = ("--description", "prod succeeded", "--github-output")
    code, out, err = status(world, commit, "success", *extra, GITHUB_OUTPUT=str(out_file))
    assert code == 0, err
    second = json.loads(out)
    assert second["deployment_id"] == first["deployment_id"] and second["state"] == "success"
    assert outputs(out_file)["deployment_id"] == str(first["deployment_id"])

    [deployment] = world.github.state["repos"][DEV_REPO]["deployments"]
    assert deployment["sha"] == commit and deployment["environment"] == "prod"
    assert deployment["payload"] == {"service": "orders", "digest": digest}
    assert [s["state"] for s in deployment["statuses"]] == ["in_progress", "success"]
    assert deployment["statuses"][0]["environment_url"] == run_url == deployment["statuses"][0]["log_url"]
    assert deployment["statuses"][1]["description"] == "prod succeeded"


def test_a_long_description_is_shortened_to_what_github_keeps(world: World) -> None:
    commit = world.github.state["repos"][DEV_REPO]["branches"]["main"]
    code, _out, err = status(world, commit, "failure", "--description", "x" * 300)
    assert code == 0, err
    [deployment] = world.github.state["repos"][DEV_REPO]["deployments"]
    assert len(deployment["statuses"][0]["description"]) == 140


def test_refuses_what_is_not_a_commit_or_a_state(world: World) -> None:
    code, _out, err = status(world, "main; rm -rf /", "success")
    assert code == 2 and "is not a commit sha" in err
    code, _out, err = status(world, "a" * 40, "done")
    assert code == 2 and "'done' is not one of" in err
    assert world.github.requests == []


def test_a_commit_github_does_not_have_is_refused_and_a_mirrored_one_is_reported(world: World) -> None:
    commit = "c0ffee" + "0" * 34
    code, _out, err = status(world, commit, "success")
    assert code == 7 and f"No ref found for: {commit}" in err
    mirrored = httpx.post(f"{world.github.url}/_fake/repos/{DEV_REPO}/commits", json={"sha": commit})
    assert mirrored.status_code == 201 and mirrored.json() == {"sha": commit}
    code, _out, err = status(world, commit, "success")
    assert code == 0, err
    assert world.github.state["repos"][DEV_REPO]["deployments"][0]["sha"] == commit
