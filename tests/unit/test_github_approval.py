"""``pipeline approval github-pr|github-run``: the approval recorded for production is the
one GitHub recorded (reviewer, PR or run URL, digest), checked against the Ops
organisation's members; and ``check_requirements`` counts only such approvals where the
approving organisation is on GitHub."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pipeline import promotion
from pipeline.app import App
from pipeline.console.render import ConsoleSink
from pipeline.core.model import Release, ServiceRef
from pipeline.identity import Identity
from tests.support.fake_github import FakeGitHub
from tests.unit.support.github import DEV_BOT, DEV_REPO, OPS_REPO, OPS_TOKEN, World, make_world

PROD = ServiceRef("orders", "prod")


@pytest.fixture
def world(tmp_path: Path, fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.delenv("PIPELINE_LOCAL_HOME", raising=False)
    return make_world(tmp_path / "ops", fake_github)


def proposed(world: World, version: str = "v1") -> Release:
    """``version`` passed staging and its promotion pull request #1 is open."""
    release = world.passed_staging(version)
    code, _out, err = world.handoff(release)
    assert code == 0, err
    return release


def approve_pr(world: World, *extra: str) -> tuple[int, str, str]:
    args = ("approval", "github-pr", "--repo", OPS_REPO, "--pr", "1", "--env", "prod", "--json")
    return world.cli(*args, *extra, token=OPS_TOKEN)


def approvals(world: World) -> list[dict[str, object]]:
    return [{"actor": r.actor, **r.data} for r in world.history("prod") if r.action == "approve"]


def test_records_the_approving_review_of_a_team_member_on_the_head(world: World) -> None:
    v1 = proposed(world)
    world.github.review(OPS_REPO, 1, "carol")
    world.github.merge(OPS_REPO, 1)
    code, out, err = approve_pr(world)
    assert code == 0, err
    result = json.loads(out)
    assert result["reviewer"] == "carol" and result["digest"] == v1.digest and result["service"] == "orders"
    assert result["commit"] == v1.commit and result["source_repo"] == DEV_REPO
    pr_url = f"{world.github.web_url}/{OPS_REPO}/pull/1"
    [record] = approvals(world)
    assert record["actor"] == "carol" and record["verified"] == "github" and record["reviewer"] == "carol"
    assert record["url"] == pr_url and record["digest"] == v1.digest and record["organisation"] == "ops"
    assert "someone-who-pushed" not in err  # GITHUB_ACTOR is never the approver


def test_recording_the_same_approval_twice_keeps_one_record(world: World) -> None:
    proposed(world)
    world.github.review(OPS_REPO, 1, "carol")
    world.github.merge(OPS_REPO, 1)
    assert approve_pr(world)[0] == 0
    code, _out, err = approve_pr(world)
    assert code == 0 and "already recorded" in err
    assert len(approvals(world)) == 1


@pytest.mark.parametrize(
    ("reviewer", "why"),
    [
        ("mallory", "mallory is not a member of shop-ops/production"),
        ("dave", "dave is not a member of shop-ops/production"),  # in the org, not in the team
    ],
)
def test_refuses_a_reviewer_outside_the_approving_team(world: World, reviewer: str, why: str) -> None:
    proposed(world)
    world.github.review(OPS_REPO, 1, reviewer)
    world.github.merge(OPS_REPO, 1)
    code, out, err = approve_pr(world)
    assert code == 5 and out == ""
    assert why in err and "Traceback" not in err
    assert approvals(world) == []


def test_refuses_a_review_of_an_older_commit(world: World) -> None:
    proposed(world)
    world.github.review(OPS_REPO, 1, "carol")
    world.github.push(OPS_REPO, "promote/orders", {"notes.md": "pushed after the review\n"})
    world.github.merge(OPS_REPO, 1)
    code, _out, err = approve_pr(world)
    assert code == 5
    assert "carol approved commit" in err and "a push after a review voids it" in err
    assert approvals(world) == []


def test_the_latest_decision_of_a_reviewer_counts(world: World) -> None:
    proposed(world)
    world.github.review(OPS_REPO, 1, "carol")
    world.github.review(OPS_REPO, 1, "carol", "CHANGES_REQUESTED")
    world.github.review(OPS_REPO, 1, "carol", "COMMENTED")  # a comment does not change the decision
    world.github.merge(OPS_REPO, 1)
    code, _out, err = approve_pr(world)
    assert code == 5 and "no approving review of pull request #1 (carol changes requested)" in err


def test_refuses_a_digest_other_than_the_one_the_pull_request_approved(world: World) -> None:
    proposed(world)
    world.github.review(OPS_REPO, 1, "carol")
    world.github.merge(OPS_REPO, 1)
    other = world.registry.add("orders", "v2")
    code, _out, err = approve_pr(world, "--release", other.digest)
    assert code == 5 and "digest mismatch" in err and other.digest in err
    assert approvals(world) == []


def test_refuses_a_pull_request_that_is_not_merged(world: World) -> None:
    proposed(world)
    world.github.review(OPS_REPO, 1, "carol")
    code, _out, err = approve_pr(world)
    assert code == 5 and "pull request #1 of shop-ops/deployments is not merged (it is open)" in err


def test_refuses_an_approval_by_the_author_of_the_pull_request(world: World) -> None:
    proposed(world)
    world.github.member("shop-ops", DEV_BOT, teams=["production"])  # even a member may not self-approve
    world.github.review(OPS_REPO, 1, DEV_BOT, allow_self=True)
    world.github.merge(OPS_REPO, 1)
    code, _out, err = approve_pr(world)
    assert code == 5 and f"{DEV_BOT} is the pull request's author" in err


def test_an_organisation_without_github_cannot_take_pull_request_approvals(
    tmp_path: Path, fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPELINE_LOCAL_HOME", raising=False)
    world = make_world(tmp_path / "ops", fake_github, approvals_on_github=False)
    code, _out, err = approve_pr(world)
    assert code == 2 and "organisation ops has no `github:` org" in err


# --- single-organisation mode: the run's environment approval ---------------------


def approve_run(world: World, run_id: int, release: Release) -> tuple[int, str, str]:
    return world.cli(
        "approval", "github-run", "--repo", DEV_REPO, "--run-id", str(run_id), "--env", "prod",
        "--service", "orders", "--release", release.digest, "--json", token=OPS_TOKEN,
    )


def test_records_the_run_approval_of_a_team_member(world: World) -> None:
    v1 = world.passed_staging("v1")
    run = world.github.run(DEV_REPO, [{"user": "carol", "state": "approved", "environments": ["prod"]}])
    code, out, err = approve_run(world, run["id"], v1)
    assert code == 0, err
    assert json.loads(out)["reviewer"] == "carol" and json.loads(out)["url"] == run["html_url"]
    [record] = approvals(world)
    assert record["actor"] == "carol" and record["digest"] == v1.digest and record["url"] == run["html_url"]


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ([{"user": "mallory", "state": "approved", "environments": ["prod"]}], "mallory is not a member"),
        ([{"user": "carol", "state": "rejected", "environments": ["prod"]}], "carol rejected run"),
        ([{"user": "carol", "state": "approved", "environments": ["staging"]}], "has no review of its"),
    ],
)
def test_refuses_a_run_without_a_members_approval_for_the_environment(
    world: World, entries: list[dict[str, object]], why: str
) -> None:
    v1 = world.passed_staging("v1")
    run = world.github.run(DEV_REPO, entries)
    code, _out, err = approve_run(world, run["id"], v1)
    assert code == 5 and why in err
    assert approvals(world) == []


def test_a_run_approval_binds_only_to_a_release_that_passed_staging(world: World) -> None:
    world.passed_staging("v1")
    never = world.registry.add("orders", "v9")
    run = world.github.run(DEV_REPO, [{"user": "carol", "state": "approved", "environments": ["prod"]}])
    code, _out, err = approve_run(world, run["id"], never)
    assert code == 5 and "never completed a deployment in staging" in err


# --- what promotion counts -----------------------------------------------------------


def requirements_met(world: World, release: Release) -> bool:
    app = App(root_hint=world.root)
    ctx = app.context("prod", ConsoleSink())
    return not promotion.check_requirements(ctx, PROD, release, app.requirements("prod"))


def test_promotion_counts_a_verified_approval_and_ignores_an_unverified_record(world: World) -> None:
    v1 = proposed(world)
    app = App(root_hint=world.root)
    ctx = app.context("prod", ConsoleSink())
    promotion.approve(ctx, PROD, v1, "ops", Identity("carol", "os"))  # `pipeline approve`: not verified
    assert not requirements_met(world, v1)
    world.github.review(OPS_REPO, 1, "carol")
    world.github.merge(OPS_REPO, 1)
    assert approve_pr(world)[0] == 0
    assert requirements_met(world, v1)
    assert not requirements_met(world, world.passed_staging("v2"))  # the approval binds to v1's digest


def test_without_github_an_unverified_approval_still_counts(
    tmp_path: Path, fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPELINE_LOCAL_HOME", raising=False)
    world = make_world(tmp_path / "ops", fake_github, approvals_on_github=False)
    v1 = world.passed_staging("v1")
    app = App(root_hint=world.root)
    ctx = app.context("prod", ConsoleSink())
    promotion.approve(dataclasses.replace(ctx, actor="mallory"), PROD, v1, "ops", Identity("carol", "os"))
    assert requirements_met(world, v1)  # carol's OS account: local prod accepts unverified identities


def test_records_from_an_ops_checkout_that_holds_only_its_pipeline_yaml(world: World, tmp_path: Path) -> None:
    v1 = proposed(world)
    world.github.review(OPS_REPO, 1, "carol")
    world.github.merge(OPS_REPO, 1)
    ops_root = tmp_path / "ops-checkout"
    ops_root.mkdir()
    (ops_root / "pipeline.yaml").write_text((world.root / "pipeline.yaml").read_text())
    ops_side = World(ops_root, world.github)
    code, out, err = ops_side.cli(
        "approval", "github-pr", "--repo", OPS_REPO, "--pr", "1", "--env", "prod", "--json", token=OPS_TOKEN
    )
    assert code == 0, err
    assert json.loads(out)["digest"] == v1.digest
    assert [r.actor for r in ops_side.history("prod") if r.action == "approve"] == ["carol"]


def test_pipeline_approve_points_to_github_where_approvals_come_from_github(world: World) -> None:
    world.passed_staging("v1")
    code, _out, err = world.cli("approve", "orders", "--env", "prod", GITHUB_ACTOR="carol")
    assert code == 2 and "approvals for prod come from GitHub" in err
    assert "`pipeline approval github-pr` records it" in err
    assert approvals(world) == []
