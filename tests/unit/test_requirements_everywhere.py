"""An environment's requirements hold on every path that changes it, not only `promote`:
deploy, resume of a deployment started elsewhere, rollback to a release that never met
them. Break-glass (`--override-requirements --reason`) only for the owning organisation,
by a proven identity, and recorded in the audit and the history."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pipeline.core.errors import PromotionRefused
from pipeline.core.model import Missing, ServiceRef
from pipeline.core.plan import Strategy
from pipeline.core.state import Phase, Timeouts
from pipeline.core.steps import Pause, SetWeight, canary
from pipeline.identity import Identity
from pipeline.operations import Context, deploy, plan, resume, resume_paused, rollback
from pipeline.promotion import approve
from pipeline.requirements import OVERRIDE, Override, Requirements, authorise
from pipeline.testing import release
from tests.unit.support.engine import CANARY, World
from tests.unit.support.fake_cli import FakeFactory, code, install
from tests.unit.support.operators import ME, project_with_members

PROD = ServiceRef("orders", "prod")
PROD_REQ = Requirements(
    passed=("staging",),
    approval="ops",
    approvers=frozenset({"carol"}),
    unverified=True,
    owner="ops",
    owners=frozenset({"carol"}),
)
CAROL = Identity("carol", "os")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeFactory]:
    return install(monkeypatch)


def guarded(world: World, override: Override | None = None) -> Context:
    """A context for prod as the CLI builds it: prod's requirements, maybe an override."""
    return dataclasses.replace(world.ctx(), requires=PROD_REQ, override=override)


def overrides(world: World) -> list[dict[str, object]]:
    return [r.data for r in world.store.history(PROD) if r.action == OVERRIDE]


# --- deploy --------------------------------------------------------------------------


def test_deploy_to_prod_of_an_unpromoted_release_exits_5_listing_what_is_missing(
    fake: type[FakeFactory],
) -> None:
    exit_code, _out, err = code("deploy", "orders", "--env", "prod", "--ref", "v1", "--yes")
    assert exit_code == 5, err
    assert "has not passed staging" in err and "no approval of v1" in err
    assert "--override-requirements" in err  # the hint names the break-glass path
    assert fake.store.load(PROD) is None  # nothing changed in prod
    assert fake.store.history(PROD) == []
    assert fake.fakes.log.calls == []


def test_deploy_of_a_release_that_passed_dev_reaches_staging(fake: type[FakeFactory]) -> None:
    assert code("deploy", "orders", "--env", "staging", "--ref", "v1", "--yes")[0] == 5  # not in dev yet
    assert code("deploy", "orders", "--env", "dev", "--ref", "v1")[0] == 0
    assert code("deploy", "orders", "--env", "staging", "--ref", "v1")[0] == 0


# --- resume --------------------------------------------------------------------------


def test_resume_of_a_deployment_started_elsewhere_checks_the_requirements() -> None:
    world = World()
    v1 = release("v1")
    started = plan(world.ctx(), PROD, v1, CANARY)  # persisted by a process that never checked
    world.store.commit(started, [])
    with pytest.raises(PromotionRefused) as refused:
        resume(guarded(world), PROD)
    assert refused.value.missing == (Missing("passed", "staging"), Missing("approval", "prod", "ops"))
    assert world.store.load(PROD) == started  # not moved on
    assert world.platform.log.calls == []


def test_a_deployment_started_with_an_override_resumes_without_another() -> None:
    world = World()
    started = plan(world.ctx(), PROD, release("v1"), CANARY)
    world.store.commit(started, [])
    state = resume(guarded(world, Override("incident 4711", CAROL)), PROD)
    assert state.phase is Phase.SUCCEEDED
    assert [o["reason"] for o in overrides(world)] == ["incident 4711"]


# --- continue ------------------------------------------------------------------------


def test_continue_of_a_paused_deployment_that_never_met_the_requirements_is_refused() -> None:
    world = World()
    assert deploy(world.ctx(), PROD, release("v1"), CANARY).phase is Phase.SUCCEEDED
    strategy = Strategy(steps=canary((SetWeight(30), Pause(None))), timeouts=Timeouts(hold=120, poll=5))
    refusals: list[PromotionRefused] = []
    real_sleep = world.clock.sleep

    def sleep(seconds: float) -> None:  # an operator continues while v2 (unchecked) is paused
        real_sleep(seconds)
        if not refusals:
            try:
                resume_paused(dataclasses.replace(guarded(world), owner="bob@host:2"), PROD)
            except PromotionRefused as exc:
                refusals.append(exc)

    world.clock.sleep = sleep  # type: ignore[method-assign]
    state = deploy(world.ctx(), PROD, release("v2"), strategy)  # started where nothing checked
    assert [item.kind for item in refusals[0].missing] == ["passed", "approval"]
    assert state.phase is Phase.ROLLED_BACK and state.reason == "nobody continued within 2m"
    assert "continue" not in [r.action for r in world.store.history(PROD)]


# --- rollback ------------------------------------------------------------------------


def test_rollback_to_a_release_that_never_met_prods_requirements_is_refused() -> None:
    world = World()
    v1, v2 = release("v1"), release("v2")
    assert deploy(world.ctx(), PROD, v1, CANARY).phase is Phase.SUCCEEDED  # got in without checks
    assert deploy(world.ctx(), ServiceRef("orders", "staging"), v2, CANARY).phase is Phase.SUCCEEDED
    approve(world.ctx(), PROD, v2, "ops", CAROL)
    assert deploy(guarded(world), PROD, v2, CANARY).phase is Phase.SUCCEEDED  # v2 met them
    with pytest.raises(PromotionRefused, match=r"cannot deploy v1 .* has not passed staging"):
        rollback(guarded(world), PROD, CANARY)
    live = world.store.load(PROD)
    assert live is not None and live.release == v2  # still v2
    state = rollback(guarded(world, Override("v2 corrupts orders", CAROL)), PROD, CANARY)
    assert state is not None and state.phase is Phase.SUCCEEDED and state.release == v1
    assert [o["reason"] for o in overrides(world)] == ["v2 corrupts orders"]


# --- break glass ---------------------------------------------------------------------


def test_break_glass_by_someone_outside_the_owning_organisation_is_refused(fake: type[FakeFactory]) -> None:
    exit_code, _out, err = code(
        "deploy", "orders", "--env", "prod", "--ref", "v1", "--yes",
        "--override-requirements", "--reason", "hotfix", PIPELINE_ACTOR="carol", GITHUB_ACTOR="carol",
    )  # fmt: skip
    assert exit_code == 5, err
    assert f"{ME} (OS account, unverified) may not override the requirements of prod" in err
    assert fake.store.load(PROD) is None and fake.store.history(PROD) == []


def test_break_glass_needs_a_reason(fake: type[FakeFactory]) -> None:
    exit_code, _out, err = code(
        "deploy", "orders", "--env", "prod", "--ref", "v1", "--yes", "--override-requirements"
    )
    assert exit_code == 2 and "needs --reason" in err
    assert fake.store.load(PROD) is None


def test_break_glass_by_an_owner_is_recorded_in_the_audit_and_shown_by_history(
    fake: type[FakeFactory], tmp_path: Path
) -> None:
    root = project_with_members(tmp_path)  # this OS account is an Ops member there
    exit_code, _out, err = code(
        "deploy", "orders", "--env", "prod", "--ref", "v1", "--yes",
        "--override-requirements", "--reason", "incident 4711: staging is down",
        root=root, PIPELINE_ACTOR="dave",
    )  # fmt: skip
    assert exit_code == 0, err
    (record,) = [r for r in fake.store.history(PROD) if r.action == OVERRIDE]
    assert record.kind == "audit" and record.actor == "dave"  # the label
    assert record.data["identity"] == {"name": ME, "source": "os", "verified": False}  # who, proven
    assert record.data["reason"] == "incident 4711: staging is down"
    assert record.data["missing"] == ["passed:staging", "approval:ops"]
    live = fake.store.load(PROD)
    assert live is not None and record.deployment == live.id and live.phase is Phase.SUCCEEDED
    exit_code, out, _err = code("history", "orders", "--env", "prod", "--json", root=root)
    assert [r["actor"] for r in json.loads(out) if r["action"] == OVERRIDE] == ["dave"]
    exit_code, out, _err = code("history", "orders", "--env", "prod", root=root, COLUMNS="200")
    assert "override-requirements" in out
    assert f"BREAK-GLASS: requirements of prod overridden by {ME} (OS account, unverified)" in out


def test_an_override_changes_nothing_when_requirements_hold(fake: type[FakeFactory]) -> None:
    assert code("deploy", "orders", "--env", "dev", "--ref", "v1")[0] == 0
    exit_code, _out, err = code(
        "deploy", "orders", "--env", "staging", "--ref", "v1", "--override-requirements", "--reason", "x"
    )  # this OS account is no member of dev, and needs not be
    assert exit_code == 0, err
    assert not [r for r in fake.store.history(ServiceRef("orders", "staging")) if r.action == OVERRIDE]


def test_an_environment_that_denies_unverified_identities_refuses_an_os_account_override() -> None:
    req = dataclasses.replace(PROD_REQ, unverified=False)
    with pytest.raises(PromotionRefused, match="does not accept unverified identities"):
        authorise(PROD, req, Override("hotfix", CAROL))
    arn = "arn:aws:sts::123456789012:assumed-role/ops-admin/carol"
    pattern = "aws:arn:aws:sts::123456789012:assumed-role/ops-admin/*"
    aws_req = dataclasses.replace(req, owners=frozenset({pattern}))
    authorise(PROD, aws_req, Override("hotfix", Identity(arn, "aws-sts")))  # allowed: a member, proven
    with pytest.raises(PromotionRefused, match="may not override"):
        authorise(PROD, aws_req, Override("hotfix", Identity(arn.replace("ops-admin", "dev"), "aws-sts")))


def test_a_dry_run_says_the_deployment_would_be_refused_and_changes_nothing(fake: type[FakeFactory]) -> None:
    exit_code, out, err = code("deploy", "orders", "--env", "prod", "--ref", "v1", "--dry-run", COLUMNS="200")
    assert exit_code == 0, err
    assert "refused (exit 5): cannot deploy v1" in out and "has not passed staging" in out
    exit_code, out, _err = code("deploy", "orders", "--env", "dev", "--ref", "v1", "--dry-run", "--json")
    assert exit_code == 0 and json.loads(out)["refused"] == ""
    assert fake.store.load(PROD) is None and fake.store.load(ServiceRef("orders", "dev")) is None


def test_promote_with_break_glass_by_an_owner_goes_ahead_without_the_approval(
    fake: type[FakeFactory], tmp_path: Path
) -> None:
    root = project_with_members(tmp_path)
    for env in ("dev", "staging"):
        assert code("deploy", "orders", "--env", env, "--ref", "v1", root=root)[0] == 0
    promote = ("promote", "orders", "--from", "staging", "--to", "prod", "--yes")
    assert code(*promote, root=root)[0] == 5  # no approval
    exit_code, _out, err = code(*promote, "--override-requirements", "--reason", "approver away", root=root)
    assert exit_code == 0, err
    (record,) = [r for r in fake.store.history(PROD) if r.action == OVERRIDE]
    assert record.data["missing"] == ["approval:ops"] and record.data["reason"] == "approver away"
