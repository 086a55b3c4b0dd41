"""The workflows end to end with act, on the local platform and a fake GitHub API.

One story per module (see ``conftest.world``): a first release of orders runs in dev,
staging and prod; a push changes orders and goes through the Dev chain up to the Ops
pull request; Ops approves and promotes it; a bad release stops at dev; approvals that do
not count and releases that never passed staging are refused; the operate and rollback
workflows return a service to its last good release; crafted dispatch inputs stay inert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.workflows.support.act import ActRun
from tests.workflows.support.story import (
    open_pull_numbers,
    open_release_pull,
    pulls,
    release_file,
    review_and_merge,
    serving,
    succeeded,
)
from tests.workflows.support.world import DEV_REPO, OPS_MEMBER, OUTSIDER, World

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # one act run takes about a minute

FAULT = json.dumps({"error_rate": 0.5}) + "\n"


@dataclass(frozen=True, slots=True)
class Delivery:
    run: ActRun
    commit: str
    digest: str  # what dev serves after the run


@dataclass(frozen=True, slots=True)
class Promotion:
    run: ActRun
    number: int


@pytest.fixture(scope="module")
def first_digest(world: World) -> str:
    return serving(world, "orders", "dev")


@pytest.fixture(scope="module")
def good(world: World, first_digest: str) -> Delivery:
    before = world.head()
    commit = world.commit_dev("orders 1.1.0", {"services/orders/VERSION": "1.1.0\n"})
    run = world.push(before)
    return Delivery(run, commit, serving(world, "orders", "dev"))


@pytest.fixture(scope="module")
def promotion(world: World, good: Delivery) -> Promotion:
    (number,) = open_pull_numbers(world, "orders")
    review_and_merge(world, number, OPS_MEMBER)
    return Promotion(world.merged_pull_request(number, "promote/orders"), number)


@pytest.fixture(scope="module")
def bad(world: World, good: Delivery) -> Delivery:
    before = world.head()
    commit = world.commit_dev("orders: a release that fails half of its requests",
                              {"services/orders/fault.json": FAULT})
    run = world.push(before)
    return Delivery(run, commit, serving(world, "orders", "dev"))


def rolled_back(world: World) -> str:
    """The digest of the release dev rolled back (the bad one)."""
    return next((r["digest"] for r in world.history("orders", "dev") if r.get("phase") == "rolled_back"), "")


# --- the Dev chain ------------------------------------------------------------------------


def test_a_push_changing_orders_runs_only_orders_chain(good: Delivery) -> None:
    assert good.run.succeeded, good.run.tail()
    assert "[orders/service/test]" in good.run.output
    assert "[catalog/" not in good.run.output and "[notify/" not in good.run.output


def test_a_push_that_changes_no_service_runs_no_chain(world: World) -> None:
    before = world.head()
    readme = (world.dev / "docs" / "config.md").read_text(encoding="utf-8")
    world.commit_dev("docs: one more line", {"docs/config.md": readme + "\n"})
    run = world.push(before)
    assert run.succeeded, run.tail()
    assert "[deliver/changed services] 🏁  Job succeeded" in run.output
    assert "/service/" not in run.output


def test_the_same_digest_succeeds_in_dev_and_staging(world: World, good: Delivery, first_digest: str) -> None:
    assert good.digest != first_digest
    assert good.digest in succeeded(world, "orders", "dev")
    assert good.digest in succeeded(world, "orders", "staging")
    assert serving(world, "orders", "staging") == good.digest


def test_the_load_report_is_an_artifact_and_summarised(world: World, good: Delivery) -> None:
    report = world.artifacts / "load-report-orders"
    assert (report / "summary.md").is_file(), sorted(p.name for p in report.glob("*"))
    assert any(p.suffix == ".html" for p in report.iterdir())
    assert "Load test: orders" in good.run.summaries()


def test_the_deployment_reports_of_dev_and_staging_are_artifacts(world: World, good: Delivery) -> None:
    for env in ("dev", "staging"):
        report = world.artifacts / f"deployment-report-orders-{env}" / f"{env}.html"
        assert report.is_file(), sorted(p.name for p in world.artifacts.iterdir())
        text = report.read_text()
        assert 'id="chart-rate"' in text and 'id="chart-weights"' in text and "<script" not in text


def test_the_handoff_opens_one_promotion_pull_request_with_the_digest(world: World, good: Delivery) -> None:
    opened = [pulls(world)[str(n)] for n in open_pull_numbers(world, "orders")]
    assert len(opened) == 1
    release = release_file(world, "promote/orders", "orders")
    assert release["digest"] == good.digest
    assert release["commit"] == good.commit
    assert release["source_repo"] == DEV_REPO
    assert f"pull/{opened[0]['number']}" in good.run.summaries()


def test_a_bad_release_stops_at_dev_with_a_rollback(world: World, good: Delivery, bad: Delivery) -> None:
    assert not bad.run.succeeded
    assert bad.digest == good.digest, "dev is back on the last good release"
    assert rolled_back(world) not in (good.digest, ""), "the bad release was rolled back in dev"
    assert "deployment to dev failed" in bad.run.summaries()


def test_after_a_bad_release_staging_and_the_handoff_are_skipped(world: World, good: Delivery,
                                                                  bad: Delivery) -> None:
    assert not bad.run.ran("Promote the digest that passed dev")
    assert not bad.run.ran("Open or update the promotion pull request")
    assert rolled_back(world) not in {r["digest"] for r in world.history("orders", "staging")}
    assert serving(world, "orders", "staging") == good.digest
    assert release_file(world, "promote/orders", "orders")["commit"] != bad.commit


# --- Ops: promotion of the approved pull request --------------------------------------------


def test_ops_promotes_exactly_the_approved_digest(world: World, good: Delivery, promotion: Promotion) -> None:
    assert promotion.run.succeeded, promotion.run.tail()
    assert serving(world, "orders", "prod") == good.digest


def test_ops_records_the_reviewer_of_the_pull_request_as_the_approver(
    world: World, good: Delivery, promotion: Promotion
) -> None:
    approvals = [r for r in world.history("orders", "prod")
                 if r["digest"] == good.digest and "approv" in r["action"].lower()]
    assert approvals, world.history("orders", "prod")
    assert any(r["actor"] == OPS_MEMBER for r in approvals), approvals
    assert any(f"pull/{promotion.number}" in json.dumps(r) for r in approvals), approvals


def test_ops_reports_the_outcome_to_the_dev_commit(
    world: World, good: Delivery, promotion: Promotion
) -> None:
    state = world.github.call("GET", "/_fake/state")
    deployments = state["repos"][DEV_REPO].get("deployments") or []
    mine = [d for d in deployments if d.get("sha") == good.commit and d.get("environment") == "prod"]
    assert mine, deployments
    assert "success" in json.dumps(mine)


def test_ops_refuses_an_approval_by_a_non_member(world: World, promotion: Promotion,
                                                 first_digest: str) -> None:
    before = serving(world, "orders", "prod")
    release = release_file(world, "main", "orders")
    number = open_release_pull(world, "orders", release | {"deployment": "d-proposed-again"})
    review_and_merge(world, number, OUTSIDER)
    run = world.merged_pull_request(number, "promote/orders")
    assert not run.succeeded
    assert f"{OUTSIDER} is not a member" in run.output
    assert "no valid Ops approval" in run.summaries()
    assert serving(world, "orders", "prod") == before


def test_ops_refuses_a_digest_that_never_passed_staging(
    world: World, promotion: Promotion, bad: Delivery
) -> None:
    before = serving(world, "orders", "prod")
    release = release_file(world, "main", "orders") | {"digest": rolled_back(world), "commit": bad.commit}
    number = open_release_pull(world, "orders", release)
    review_and_merge(world, number, OPS_MEMBER)
    run = world.merged_pull_request(number, "promote/orders")
    assert not run.succeeded
    assert "staging" in run.output and ("never" in run.output or "has not passed" in run.output)
    assert "promotion of" in run.summaries()
    assert serving(world, "orders", "prod") == before


# --- operations ---------------------------------------------------------------------------


def test_operate_rolls_staging_back_to_its_last_good_release(world: World, good: Delivery, bad: Delivery,
                                                              first_digest: str) -> None:
    assert serving(world, "orders", "staging") == good.digest
    run = world.dispatch(world.dev, "operate.yml", {"action": "rollback", "service": "orders",
                                                    "environment": "staging", "reason": "e2e: back"})
    assert run.succeeded, run.tail()
    assert serving(world, "orders", "staging") == first_digest


def test_ops_rollback_returns_prod_to_its_last_good_release(world: World, promotion: Promotion,
                                                             first_digest: str) -> None:
    assert serving(world, "orders", "prod") != first_digest
    run = world.dispatch(world.ops, "rollback.yml", {"service": "orders", "reason": "e2e: on-call"})
    assert run.succeeded, run.tail()
    assert serving(world, "orders", "prod") == first_digest


@pytest.mark.parametrize(("action", "exit_code"), [("continue", 0), ("abort", 6)])
def test_operate_signals_a_deployment_that_is_still_running(
    world: World, bad: Delivery, action: str, exit_code: int
) -> None:
    previous = serving(world, "orders", "dev")
    service_file = world.dev / "services/orders/service.yaml"
    original = service_file.read_text(encoding="utf-8")
    service = yaml.safe_load(original)
    service["deploy"]["steps"] = [{"set_weight": 50}, {"pause": None}, {"analyze": {}}]
    change: dict[str, str | None] = {
        "services/orders/service.yaml": yaml.safe_dump(service, sort_keys=False),
        "services/orders/VERSION": f"1.2.0-{action}\n",
    }
    if (world.dev / "services/orders/fault.json").exists():
        change["services/orders/fault.json"] = None
    commit = world.commit_dev(f"orders: a release that waits for a person ({action})", change)
    try:
        with world.background("deploy", "orders", "--env", "dev", "--ref", commit, "--yes") as deployment:
            row = world.wait_for_status("orders", "dev", lambda r: r["waiting_for"] == "Hold")
            assert row["release"]["commit"] == commit
            run = world.dispatch(world.dev, "operate.yml", {"action": action, "service": "orders",
                                                            "environment": "dev", "reason": f"e2e: {action}"})
            assert run.succeeded, run.tail()
            assert deployment.wait(timeout=240) == exit_code
    finally:  # later runs check out HEAD: give them the strategy without the open pause back
        world.commit_dev("orders: timed pauses again", {"services/orders/service.yaml": original})
    now = json.loads(world.pipeline("status", "orders", "--env", "dev", "--json").stdout)[0]
    if action == "continue":
        assert now["release"]["commit"] == commit and now["phase"] == "succeeded"
    else:
        assert now["phase"] == "aborted"
        assert serving(world, "orders", "dev") == previous


# --- single-organisation mode ------------------------------------------------------------


def test_single_organisation_mode_records_the_runs_approval_and_promotes(
    world: World, good: Delivery, promotion: Promotion, first_digest: str
) -> None:
    target = good.digest if serving(world, "orders", "prod") != good.digest else first_digest
    world.approve_run(501, OPS_MEMBER)
    run = world.dispatch(world.dev, "promote-single-org.yml", {"service": "orders", "release": target},
                         run_id=501)
    assert run.succeeded, run.tail()
    assert serving(world, "orders", "prod") == target
    approvals = [r for r in world.history("orders", "prod")
                 if r["digest"] == target and "actions/runs/501" in json.dumps(r)]
    assert approvals and all(r["actor"] == OPS_MEMBER for r in approvals), approvals


def test_single_organisation_mode_refuses_a_run_approved_by_a_non_member(
    world: World, good: Delivery, promotion: Promotion
) -> None:
    before = serving(world, "orders", "prod")
    world.approve_run(502, OUTSIDER)
    run = world.dispatch(world.dev, "promote-single-org.yml", {"service": "orders", "release": good.digest},
                         run_id=502)
    assert not run.succeeded
    assert f"{OUTSIDER} is not a member" in run.output
    assert serving(world, "orders", "prod") == before


# --- crafted inputs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repo", "workflow", "inputs"),
    [
        ("dev", "deliver.yml", {"services": 'x"; touch "$MARKER" #'}),
        ("dev", "operate.yml", {"action": "rollback", "service": 'x"; touch "$MARKER" #',
                                "environment": "dev", "reason": "$(touch \"$MARKER\")"}),
        ("ops", "rollback.yml", {"service": "orders\"; touch $MARKER; echo \"", "reason": "`touch $MARKER`"}),
    ],
    ids=["deliver-services", "operate-service", "ops-rollback-service"],
)
def test_a_dispatch_input_crafted_to_inject_shell_is_inert(world: World, tmp_path: Path, repo: str,
                                                           workflow: str, inputs: dict[str, str]) -> None:
    marker = tmp_path / "injected"
    world.act.env["MARKER"] = str(marker)
    try:
        run = world.dispatch(world.dev if repo == "dev" else world.ops, workflow, inputs)
    finally:
        del world.act.env["MARKER"]
    assert not marker.exists(), "an input ran as shell"
    assert not run.succeeded
    assert "unknown service" in run.output, run.tail()
