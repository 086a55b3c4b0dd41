"""``promote --release DIGEST``: exactly the named release, which must have passed the source."""

from __future__ import annotations

import pytest

from pipeline.core.errors import PromotionRefused
from pipeline.core.model import Measurement, Missing, ServiceRef, Slot
from pipeline.core.state import Phase
from pipeline.operations import deploy
from pipeline.promotion import Requirements, check_requirements, promotable, promote, refusal
from pipeline.testing import release
from tests.unit.support.engine import CANARY, REF, stable_world

PROD = ServiceRef("orders", "prod")


def test_promotes_the_named_release_although_the_source_now_serves_a_newer_one() -> None:
    world, v1 = stable_world()
    v2 = release("v2")
    assert deploy(world.ctx(), REF, v2, CANARY).phase is Phase.SUCCEEDED  # staging serves v2 now
    state = promote(world.ctx(), "orders", "staging", "prod", CANARY, Requirements(), digest=v1.digest)
    assert state.phase is Phase.SUCCEEDED
    assert state.ref == PROD and state.release == v1


def test_an_image_reference_with_the_digest_names_the_same_release() -> None:
    world, v1 = stable_world()
    assert promotable(world.ctx(), "orders", "staging", f"local/orders@{v1.digest}") == v1


def test_refuses_a_release_that_was_rolled_back_in_the_source() -> None:
    world, _v1 = stable_world()
    world.platform.metrics.per_slot[Slot.GREEN] = Measurement(100, 50, 10)  # v2 fails its analysis
    v2 = release("v2")
    assert deploy(world.ctx(), REF, v2, CANARY).phase is Phase.ROLLED_BACK
    with pytest.raises(PromotionRefused) as refused:
        promote(world.ctx(), "orders", "staging", "prod", CANARY, Requirements(), digest=v2.digest)
    assert refused.value.exit_code == 5
    assert f"cannot promote {v2.digest} of orders from staging" in refused.value.message
    assert "pipeline history orders --env staging" in refused.value.hint
    assert world.store.load(PROD) is None  # nothing was deployed


def test_refuses_a_digest_the_source_never_saw() -> None:
    world, _v1 = stable_world()
    with pytest.raises(PromotionRefused, match="never completed a deployment in staging"):
        promotable(world.ctx(), "orders", "staging", "sha256:" + "e" * 64)


def test_the_named_release_still_needs_the_targets_approval() -> None:
    world, v1 = stable_world()
    req = Requirements(passed=("staging",), approval="ops", approvers=frozenset({"carol"}))
    with pytest.raises(PromotionRefused, match="no approval"):
        promote(world.ctx(), "orders", "staging", "prod", CANARY, req, digest=v1.digest)


def test_unmet_requirements_are_reported_as_data_and_rendered_from_it() -> None:
    world, v1 = stable_world()
    req = Requirements(passed=("qa", "staging"), approval="ops", approvers=frozenset({"carol"}))
    missing = check_requirements(world.ctx(), PROD, v1, req)
    assert missing == (Missing("passed", "qa"), Missing("approval", "prod", "ops"))
    with pytest.raises(PromotionRefused) as refused:
        promote(world.ctx(), "orders", "staging", "prod", CANARY, req)
    assert refused.value.missing == missing
    assert "has not passed qa" in refused.value.message
    assert "`pipeline promote orders --to qa ...`" in refused.value.hint
    assert "a member of ops runs `pipeline approve orders --env prod`" in refused.value.hint


def test_a_github_verified_approval_hints_at_the_pull_request_review() -> None:
    world, v1 = stable_world()
    req = Requirements(approval="ops", verified="github")
    (item,) = check_requirements(world.ctx(), PROD, v1, req)
    assert item == Missing("approval", "prod", "ops", verified="github")
    assert "`pipeline approval github-pr`" in refusal(PROD, v1, (item,)).hint
