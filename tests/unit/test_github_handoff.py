"""``pipeline handoff``: one promotion pull request per service in the Ops repository,
opened, then left alone for the same digest, then updated for a newer release; against
the fake GitHub API over real HTTP, with real staging history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.fake_github import FakeGitHub
from tests.unit.support.github import DEV_BOT, OPS_REPO, World, make_world, outputs


@pytest.fixture
def world(tmp_path: Path, fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.delenv("PIPELINE_LOCAL_HOME", raising=False)
    return make_world(tmp_path / "dev", fake_github)


def test_opens_a_pull_request_proposing_the_release_that_passed_staging(world: World, tmp_path: Path) -> None:
    v1 = world.passed_staging("v1")
    out_file = tmp_path / "github_output"
    out_file.touch()
    evidence = ("--evidence", "load test=https://ci.example/runs/7")
    code, out, err = world.handoff(v1, *evidence, "--github-output", GITHUB_OUTPUT=str(out_file))
    assert code == 0, err
    result = json.loads(out)
    assert result["pr_number"] == 1 and result["changed"] is True
    assert outputs(out_file)["pr_number"] == "1" and outputs(out_file)["changed"] == "true"
    assert outputs(out_file)["pr_url"] == f"{world.github.web_url}/{OPS_REPO}/pull/1"

    proposed = json.loads(world.github.files(OPS_REPO, "promote/orders")["releases/orders.json"])
    assert proposed["digest"] == v1.digest and proposed["version"] == "v1" and proposed["commit"] == v1.commit
    assert proposed["source_repo"] == "shop/shop" and proposed["source_environment"] == "staging"
    assert proposed["deployment"].startswith("d-")  # the staging deployment that succeeded
    assert proposed["evidence"] == {"load test": "https://ci.example/runs/7"}
    pull = world.github.pull(OPS_REPO, 1)
    assert pull["title"] == f"Promote orders v1 ({v1.digest[7:19]})"
    assert pull["head"] == "promote/orders" and pull["base"] == "main" and pull["user"] == DEV_BOT
    assert "[load test](https://ci.example/runs/7)" in pull["body"]
    assert "First promotion" in pull["body"]


def test_the_same_digest_again_changes_nothing(world: World) -> None:
    v1 = world.passed_staging("v1")
    assert world.handoff(v1)[0] == 0
    head_before = world.github.pull(OPS_REPO, 1)["head_sha"]
    code, out, err = world.handoff(v1)
    assert code == 0, err
    assert json.loads(out) == {**json.loads(out), "pr_number": 1, "changed": False}
    assert world.github.pull(OPS_REPO, 1)["head_sha"] == head_before  # no new commit
    assert len(world.github.state["repos"][OPS_REPO]["pulls"]) == 1


def test_a_newer_release_replaces_the_file_of_the_open_pull_request(world: World) -> None:
    v1 = world.passed_staging("v1")
    assert world.handoff(v1)[0] == 0
    world.github.review(OPS_REPO, 1, "carol")  # approves v1's head
    v2 = world.passed_staging("v2")
    code, out, err = world.handoff(v2)
    assert code == 0, err
    assert json.loads(out)["pr_number"] == 1 and json.loads(out)["changed"] is True
    pull = world.github.pull(OPS_REPO, 1)
    assert pull["title"] == f"Promote orders v2 ({v2.digest[7:19]})"
    repo = world.github.state["repos"][OPS_REPO]
    head = repo["commits"][pull["head_sha"]]
    assert head["parents"] == [repo["branches"]["main"]]  # one commit on top of production's branch
    assert json.loads(head["files"]["releases/orders.json"])["digest"] == v2.digest
    assert pull["reviews"][0]["commit_id"] != pull["head_sha"]  # the v1 approval no longer counts


def test_after_a_merge_the_next_pull_request_shows_what_changes_in_production(world: World) -> None:
    v1 = world.passed_staging("v1")
    world.handoff(v1)
    world.github.merge(OPS_REPO, 1)
    v2 = world.passed_staging("v2")
    code, out, err = world.handoff(v2)
    assert code == 0, err
    assert json.loads(out)["pr_number"] == 2
    body = world.github.pull(OPS_REPO, 2)["body"]
    assert f"`{v1.digest}`" in body and f"`{v2.digest}`" in body
    assert f"https://github.example/shop/shop/compare/{v1.commit}...{v2.commit}" in body


def test_a_release_production_already_runs_needs_no_pull_request(world: World) -> None:
    v1 = world.passed_staging("v1")
    world.handoff(v1)
    world.github.merge(OPS_REPO, 1)
    code, out, err = world.handoff(v1)
    assert code == 0, err
    assert json.loads(out)["changed"] is False and json.loads(out)["pr_number"] == ""
    assert "already names this release" in err


def test_refuses_a_digest_that_never_passed_staging(world: World) -> None:
    world.passed_staging("v1")
    never = world.registry.add("orders", "v9")
    code, _out, err = world.handoff(never)
    assert code == 5
    assert "never completed a deployment in staging" in err and "Traceback" not in err
    assert world.github.state["repos"][OPS_REPO]["pulls"] == {}


def test_a_malformed_evidence_link_is_a_usage_error(world: World) -> None:
    v1 = world.passed_staging("v1")
    code, _out, err = world.handoff(v1, "--evidence", "report")
    assert code == 2 and "is not NAME=URL" in err
