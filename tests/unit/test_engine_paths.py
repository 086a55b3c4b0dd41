"""The engine's paths, stepped through the ports' fakes with a fake clock (no sleeping)."""

from __future__ import annotations

import pytest

from pipeline.core.errors import (
    LockHeldError,
    NotFoundError,
    PlatformError,
    PromotionRefused,
    StateConflict,
    TransientPlatformError,
)
from pipeline.core.model import Measurement, ServiceRef, Slot, StageResult, Weights
from pipeline.core.plan import Strategy
from pipeline.core.state import AbortRequested, Phase, Timeouts
from pipeline.core.steps import Pause, SetWeight, canary
from pipeline.identity import Identity
from pipeline.operations import (
    Context,
    abort,
    deploy,
    resume,
    resume_paused,
    rollback,
    successful_releases,
)
from pipeline.promotion import Requirements, approve, promote
from pipeline.testing import release
from tests.unit.support.engine import CANARY, REF, World, stable_world

BLUE_ONLY = Weights(100, 0)


def test_first_deployment_goes_straight_to_100_after_the_test_stage() -> None:
    world = World()
    state = deploy(world.ctx(), REF, release("v1"), CANARY)
    assert state.phase is Phase.SUCCEEDED
    assert world.platform.router.actual == BLUE_ONLY
    assert world.platform.stages.runs == [("test", "http://test.invalid/blue")]
    assert "deployment.succeeded" in world.actions()


def test_good_canary_promotes_and_scales_the_old_slot_down_after_verification() -> None:
    world, _ = stable_world()
    v2 = release("v2")
    state = deploy(world.ctx(), REF, v2, CANARY)
    assert state.phase is Phase.SUCCEEDED
    assert world.platform.router.history == [Weights(80, 20), Weights(50, 50), Weights(0, 100)]
    calls = world.platform.log.calls
    assert calls.index("scale_down blue") > max(i for i, c in enumerate(calls) if c == "get_weights")
    assert world.platform.compute.slots == {Slot.BLUE: None, Slot.GREEN: v2}
    assert [r.version for r in successful_releases(world.ctx(), REF)] == ["v1", "v2"]


def test_rolls_back_when_analysis_fails() -> None:
    world, v1 = stable_world()
    world.platform.metrics.per_slot[Slot.GREEN] = Measurement(requests=200, errors=40, p95_ms=30)
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    assert state.phase is Phase.ROLLED_BACK
    assert "error_rate 0.2 > 0.01" in state.reason
    assert world.platform.router.actual == BLUE_ONLY
    assert world.platform.compute.slots[Slot.GREEN] is None
    assert world.platform.compute.slots[Slot.BLUE] == v1


def test_rolls_back_when_inconclusive_beyond_its_limit() -> None:
    world, _ = stable_world()
    world.platform.metrics.per_slot[Slot.GREEN] = Measurement(requests=3, errors=0, p95_ms=10)
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    assert state.phase is Phase.ROLLED_BACK
    assert "inconclusive 2 times" in state.reason
    assert state.counters.inconclusives == 2
    assert world.platform.router.actual == BLUE_ONLY


def test_inconclusive_within_its_limit_measures_again_and_can_succeed() -> None:
    world, _ = stable_world()
    answers = iter([Measurement(3, 0, 10)] + [Measurement(500, 0, 10)] * 10)
    world.platform.metrics.per_slot[Slot.GREEN] = lambda: next(answers)
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    assert state.phase is Phase.SUCCEEDED
    assert any("inconclusive (1/1 allowed)" in h for h in world.history())


def test_metrics_provider_errors_beyond_the_limit_roll_back() -> None:
    world, _ = stable_world()
    world.platform.metrics.fail = "connection refused"
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    assert state.phase is Phase.ROLLED_BACK
    assert "analysis kept failing" in state.reason


def test_green_never_healthy_rolls_back_before_any_traffic_moves() -> None:
    world, _ = stable_world()
    world.platform.compute.ready_after = None
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    assert state.phase is Phase.ROLLED_BACK
    assert "never became ready within 60s" in state.reason
    assert world.platform.router.history == [BLUE_ONLY]  # only the rollback's re-assertion
    assert "set_weights 80/20" not in world.platform.log.calls


def test_weight_not_verified_never_scales_the_old_slot_down() -> None:
    world, v1 = stable_world()
    world.platform.router.stuck = True  # the data plane ignores every change
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    assert state.phase is Phase.ROLLED_BACK  # rollback's 100/0 is what the router already serves
    assert "traffic not verified" in state.reason
    assert "scale_down blue" not in world.platform.log.calls
    assert world.platform.compute.slots[Slot.BLUE] == v1


def test_weights_that_propagate_late_are_verified_by_reading_back() -> None:
    world, _ = stable_world()
    world.platform.router.lag = 3
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    assert state.phase is Phase.SUCCEEDED
    assert world.platform.log.calls.count("get_weights") >= 3 * 3


def test_rollback_that_cannot_be_verified_ends_failed_and_scales_nothing_down() -> None:
    world, _ = stable_world()
    world.platform.metrics.per_slot[Slot.GREEN] = Measurement(200, 100, 30)
    original = world.platform.router.set_weights

    def set_weights(w: Weights) -> None:
        world.platform.router.stuck = w == BLUE_ONLY
        original(w)

    world.platform.router.set_weights = set_weights  # type: ignore[method-assign]
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    assert state.phase is Phase.FAILED
    assert "nothing was scaled down" in state.reason
    assert not any(c.startswith("scale_down") for c in world.platform.log.calls)


def test_test_stage_failure_rolls_back_before_traffic() -> None:
    world, _ = stable_world()
    world.platform.stages.results["test"] = StageResult(False, "GET /health returned 503")
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    assert state.phase is Phase.ROLLED_BACK
    assert state.reason == "test stage failed: GET /health returned 503"
    assert world.platform.router.history == [BLUE_ONLY]


def test_pause_without_continue_hits_its_deadline_and_rolls_back() -> None:
    world, _ = stable_world()
    strategy = Strategy(steps=canary((SetWeight(10), Pause(None))), timeouts=Timeouts(hold=120, poll=5))
    state = deploy(world.ctx(), REF, release("v2"), strategy)
    assert state.phase is Phase.ROLLED_BACK
    assert state.reason == "nobody continued within 2m"


def test_abort_mid_canary_returns_traffic_and_ends_aborted() -> None:
    world, _ = stable_world()
    strategy = Strategy(steps=canary((SetWeight(30), Pause(None), SetWeight(60))))
    world.clock.sleep = _signal_after(world, 10, lambda ctx: abort(ctx, REF, "bad dashboards"))
    state = deploy(world.ctx(), REF, release("v2"), strategy)
    assert state.phase is Phase.ABORTED
    assert state.reason == "bad dashboards (bob)"
    assert world.platform.router.actual == BLUE_ONLY
    assert "abort" in world.actions()


def test_continue_mid_canary_ends_the_pause_and_runs_the_next_step() -> None:
    world, _ = stable_world()
    strategy = Strategy(steps=canary((SetWeight(30), Pause(None), SetWeight(60))))
    world.clock.sleep = _signal_after(world, 10, lambda ctx: resume_paused(ctx, REF))
    state = deploy(world.ctx(), REF, release("v2"), strategy)
    assert state.phase is Phase.SUCCEEDED
    assert world.platform.router.history == [Weights(70, 30), Weights(40, 60), Weights(0, 100)]
    assert "bob continued step 3" in world.history()


def test_continue_full_skips_the_remaining_steps() -> None:
    world, _ = stable_world()
    strategy = Strategy(steps=canary((SetWeight(30), Pause(None), SetWeight(60), Pause(None))))
    world.clock.sleep = _signal_after(world, 10, lambda ctx: resume_paused(ctx, REF, full=True))
    state = deploy(world.ctx(), REF, release("v2"), strategy)
    assert state.phase is Phase.SUCCEEDED
    assert world.platform.router.history == [Weights(70, 30), Weights(0, 100)]


def test_continue_when_nothing_is_paused_is_refused_with_the_phase() -> None:
    world, _ = stable_world()
    with pytest.raises(StateConflict, match=r"ended|succeeded"):
        resume_paused(world.ctx(), REF)


def test_rollback_after_success_redeploys_the_last_successful_release() -> None:
    world, v1 = stable_world()
    deploy(world.ctx(), REF, release("v2"), CANARY)
    world.platform.router.history.clear()
    state = rollback(world.ctx(actor="carol"), REF, CANARY)
    assert state is not None and state.phase is Phase.SUCCEEDED
    assert state.release == v1
    assert state.steps == ()  # rollbacks are fast: straight to 100%
    assert world.platform.router.history == [BLUE_ONLY]
    assert world.platform.compute.slots == {Slot.BLUE: v1, Slot.GREEN: None}


def test_rollback_skips_releases_that_never_succeeded() -> None:
    world, v1 = stable_world()
    deploy(world.ctx(), REF, release("v2"), CANARY)
    world.platform.metrics.per_slot[Slot.BLUE] = Measurement(100, 90, 10)
    assert deploy(world.ctx(), REF, release("v3"), CANARY).phase is Phase.ROLLED_BACK
    world.platform.metrics.per_slot.clear()
    state = rollback(world.ctx(), REF, CANARY)
    assert state is not None and state.release == v1


def test_rollback_to_a_version_that_never_succeeded_is_not_found() -> None:
    world, _ = stable_world()
    with pytest.raises(NotFoundError, match="no release to roll"):
        rollback(world.ctx(), REF, CANARY, to="v9")


def test_rollback_while_previous_slot_is_warm_flips_traffic_back_at_once() -> None:
    world, v1 = stable_world()
    strategy = Strategy(steps=CANARY.steps, analysis=CANARY.analysis, keep_previous=300)
    world.clock.sleep = _signal_after(world, 1, lambda ctx: rollback(ctx, REF, strategy), when=Phase.DRAINING)
    state = deploy(world.ctx(), REF, release("v2"), strategy)
    assert state.phase is Phase.ROLLED_BACK
    assert world.platform.router.actual == BLUE_ONLY
    assert world.platform.compute.slots[Slot.BLUE] == v1
    assert "provision blue v1" not in world.platform.log.calls


def test_second_deployment_is_refused_while_one_runs() -> None:
    world, _ = stable_world()
    world.store.acquire(REF, "carol@other:7", ttl=30)
    with pytest.raises(LockHeldError, match="held by carol@other:7 since"):
        deploy(world.ctx(), REF, release("v2"), CANARY)


def test_an_expired_lease_is_taken_over() -> None:
    world, _ = stable_world()
    world.store.acquire(REF, "carol@other:7", ttl=30)
    world.clock.advance(31)
    assert deploy(world.ctx(), REF, release("v2"), CANARY).phase is Phase.SUCCEEDED


def test_resume_refuses_a_finished_deployment() -> None:
    world, _ = stable_world()
    with pytest.raises(StateConflict, match="nothing to resume"):
        resume(world.ctx(), REF)


def test_promote_refused_when_source_has_no_successful_deployment_of_the_release() -> None:
    world, _ = stable_world()
    world.platform.metrics.per_slot[Slot.GREEN] = Measurement(100, 50, 10)
    deploy(world.ctx(), REF, release("v2"), CANARY)  # rolled back: v1 still serves
    with pytest.raises(PromotionRefused, match="no successful deployment"):
        promote(world.ctx(), "orders", "dev", "prod", CANARY, Requirements())


def test_promote_takes_the_same_digest_and_checks_approval_and_passed_environments() -> None:
    world, v1 = stable_world()
    req = Requirements(
        passed=("staging",), approval="ops", approvers=frozenset({"carol"}), unverified=True
    )
    with pytest.raises(PromotionRefused, match=r"no approval of v1 .* by a member of ops"):
        promote(world.ctx(), "orders", "staging", "prod", CANARY, req)
    prod = ServiceRef("orders", "prod")
    approve(world.ctx(actor="mallory"), prod, v1, "ops", Identity("mallory", "os"))  # not a member of ops
    with pytest.raises(PromotionRefused):
        promote(world.ctx(), "orders", "staging", "prod", CANARY, req)
    approve(world.ctx(actor="carol"), prod, v1, "ops", Identity("carol", "os"))
    state = promote(world.ctx(), "orders", "staging", "prod", CANARY, req)
    assert state.phase is Phase.SUCCEEDED
    assert state.release.digest == v1.digest
    audit = [r for r in world.store.history(prod) if r.kind == "audit"]
    assert [(r.actor, r.action) for r in audit] == [
        ("mallory", "approve"),
        ("carol", "approve"),
        ("alice", "promote from staging"),
    ]


def test_history_records_who_what_digest_when_and_why() -> None:
    world, _ = stable_world()
    world.platform.metrics.per_slot[Slot.GREEN] = Measurement(100, 50, 10)
    v2 = release("v2")
    deploy(world.ctx(actor="dave"), REF, v2, CANARY)
    records = [r for r in world.store.history(REF) if r.deployment and r.version == "v2"]
    assert records[0].kind == "audit" and records[0].actor == "dave"
    assert all(r.digest == v2.digest and r.ts > 0 for r in records)
    outcome = [r for r in records if r.action == "deployment.rolled_back"]
    assert len(outcome) == 1 and "analysis failed" in outcome[0].detail


def _signal_after(world: World, seconds: float, send: object, when: Phase | None = None) -> object:
    """Replace the clock's sleep: after ``seconds`` of sleeping (in ``when``), bob sends a signal."""
    clock = world.clock
    real_sleep = FakeClockSleep(clock)
    state = {"slept": 0.0, "sent": False}

    def sleep(seconds_: float) -> None:
        real_sleep(seconds_)
        current = world.store.load(REF)
        in_phase = when is None or (current is not None and current.phase is when)
        if in_phase:
            state["slept"] += seconds_
        if not state["sent"] and state["slept"] >= seconds:
            state["sent"] = True
            ctx: Context = world.ctx(owner="bob@host:2", actor="bob")
            result = send(ctx)  # type: ignore[operator]
            assert result is None  # delivered to the running engine through the inbox

    return sleep


class FakeClockSleep:
    def __init__(self, clock: object) -> None:
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.clock.t += max(0.0, seconds)  # type: ignore[attr-defined]


def test_the_lease_is_renewed_through_a_pause_longer_than_its_ttl() -> None:
    world, _ = stable_world()
    strategy = Strategy(steps=canary((SetWeight(30), Pause(300))), timeouts=Timeouts(poll=5))
    seen: list[str] = []
    real_sleep = world.clock.sleep

    def sleep(seconds: float) -> None:
        real_sleep(seconds)
        if not seen and world.clock.slept > 200:  # well past the 30 s lease
            with pytest.raises(LockHeldError) as exc:
                world.store.acquire(REF, "mallory@elsewhere:9", ttl=30)
            seen.append(exc.value.holder)

    world.clock.sleep = sleep  # type: ignore[method-assign]
    state = deploy(world.ctx(), REF, release("v2"), strategy)
    assert state.phase is Phase.SUCCEEDED
    assert seen == ["alice@host:1"]
    assert world.store.holder(REF) is None  # released at the end


def test_transient_platform_errors_are_retried_then_succeed() -> None:
    world, _ = stable_world()
    failures = iter([TransientPlatformError("throttled")] * 2)
    original = world.platform.compute.provision

    def provision(slot: Slot, rel: object) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        original(slot, rel)  # type: ignore[arg-type]

    world.platform.compute.provision = provision  # type: ignore[method-assign]
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    assert state.phase is Phase.SUCCEEDED
    errors = [r.detail for r in world.store.history(REF) if r.action == "error"]
    assert len(errors) == 2 and all(e.startswith("Provision failed") for e in errors)


def test_a_permanent_platform_error_rolls_back_at_once() -> None:
    world, _ = stable_world()
    world.platform.compute.fail_provision = PlatformError("AccessDenied: not allowed to UpdateService")
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    assert state.phase is Phase.ROLLED_BACK
    assert state.reason.startswith("Provision failed: AccessDenied")
    errors = [r for r in world.store.history(REF) if r.action == "error"]
    assert len(errors) == 1  # not retried
    assert world.platform.router.actual == BLUE_ONLY


def test_a_signal_for_an_ended_deployment_never_touches_the_next_one() -> None:
    world, _ = stable_world()
    finished = world.store.load(REF)
    assert finished is not None
    # An abort that reached the inbox just after its deployment ended...
    world.store.send(REF, AbortRequested(world.clock.now(), "bob", "too late", deployment=finished.id))
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    # ...is recorded and ignored by the next deployment, which succeeds.
    assert state.phase is Phase.SUCCEEDED
    rejected = [r for r in world.store.history(REF) if r.action == "rejected"]
    assert len(rejected) == 1 and f"meant for deployment {finished.id}" in rejected[0].detail
    assert rejected[0].actor == "bob"
