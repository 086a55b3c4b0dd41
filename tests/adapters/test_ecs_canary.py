"""Whole ECS canaries through the real engine, on moto over HTTP, with the DynamoDB store.

``pipeline.operations.deploy`` runs each deployment with a fake clock (pauses, bakes and
deregistration delays take no time). The facts moto cannot produce are injected as
described in ``tests.adapters.support.ecs``: targets registered in a slot's target group (health),
``PutMetricData`` on a slot's target group (traffic), ``SetAlarmState`` (alarms).
"""

from __future__ import annotations

from pipeline.aws.alb.router import AlbListenerRouter, service_routes
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.core.model import Release, Slot, Weights
from pipeline.core.state import Phase
from pipeline.testing import FakeClock
from tests.adapters.support.ecs import (
    REF,
    STRATEGY,
    Harness,
    desired_count,
    harness,
    orders_spec,
    put_traffic,
    register_targets,
    set_alarm,
)

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)


def first_release_on_blue(h: Harness, session: AwsSession, spec: EcsServiceSpec) -> Release:
    register_targets(session, spec, Slot.BLUE, spec.desired_count)
    state = h.deploy("1.0.0")
    assert state.phase is Phase.SUCCEEDED, state.reason
    assert state.new_slot is Slot.BLUE and h.router.get_weights() == Weights(100, 0)
    h.log.reset()
    return state.release


def test_a_good_release_is_promoted_and_the_old_slot_scaled_down(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    h = harness(session, ready_env, spec, clock)
    first_release_on_blue(h, session, spec)
    register_targets(session, spec, Slot.GREEN, spec.desired_count)
    put_traffic(session, ready_env, spec, Slot.GREEN, start=clock.now(), seconds=1800, requests=50, errors=0)
    put_traffic(session, ready_env, spec, Slot.BLUE, start=clock.now(), seconds=1800, requests=50, errors=0)

    state = h.deploy("2.0.0")

    assert state.phase is Phase.SUCCEEDED, state.reason
    fresh, _ = service_routes(session, ready_env, spec)  # read back by a new process
    assert AlbListenerRouter(fresh).get_weights() == Weights(0, 100)
    assert h.log.calls["ModifyRule"] == 4  # test rule to green, then 20%, 50%, 100%
    assert desired_count(ready_env, "orders-blue") == 0 and desired_count(ready_env, "orders-green") == 2
    assert [stage for stage, _ in h.stages.runs] == ["test", "test"]
    assert h.stages.runs[-1][1].endswith(":8080/orders")
    outcomes = [r.action for r in h.store.history(REF) if r.action.startswith("deployment.")]
    assert outcomes == ["deployment.succeeded", "deployment.succeeded"]


def test_a_release_with_errors_is_rolled_back_to_the_verified_old_split(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    h = harness(session, ready_env, spec, clock)
    first_release_on_blue(h, session, spec)
    register_targets(session, spec, Slot.GREEN, spec.desired_count)
    put_traffic(session, ready_env, spec, Slot.GREEN, start=clock.now(), seconds=1800, requests=40, errors=10)

    state = h.deploy("2.0.0")

    assert state.phase is Phase.ROLLED_BACK
    assert "analysis failed: error_rate 0.25 > 0.05" in state.reason
    assert h.router.get_weights() == Weights(100, 0)
    assert state.weights == Weights(100, 0)  # verified by reading the rule back
    assert desired_count(ready_env, "orders-green") == 0 and desired_count(ready_env, "orders-blue") == 2


def test_a_firing_alarm_rolls_the_release_back(
    session: AwsSession, ready_env: AwsEnvironment, clock: FakeClock
) -> None:
    alarmed = orders_spec(alarm_names=("orders-5xx",))
    h = harness(session, ready_env, alarmed, clock)
    first_release_on_blue(h, session, alarmed)
    register_targets(session, alarmed, Slot.GREEN, alarmed.desired_count)
    put_traffic(
        session, ready_env, alarmed, Slot.GREEN, start=clock.now(), seconds=1800, requests=50, errors=0
    )
    set_alarm("orders-5xx", "ALARM")

    state = h.deploy("2.0.0")

    assert state.phase is Phase.ROLLED_BACK
    assert state.reason == "analysis failed: alarm in ALARM: orders-5xx"
    assert h.router.get_weights() == Weights(100, 0)


def test_a_slot_that_never_becomes_healthy_is_rolled_back_before_any_weight_moves(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    h = harness(session, ready_env, spec, clock)
    first_release_on_blue(h, session, spec)  # no targets will ever register in green
    stages_before = len(h.stages.runs)

    state = h.deploy("2.0.0")

    assert state.phase is Phase.ROLLED_BACK
    assert "never became ready within 60s" in state.reason
    assert "no targets registered in target group orders-green" in state.reason
    assert h.log.calls["ModifyRule"] == 1  # only the test rule, to green; the live rule never changed
    assert h.router.get_weights() == Weights(100, 0)
    assert len(h.stages.runs) == stages_before  # no test stage against a slot that is not ready
    assert desired_count(ready_env, "orders-green") == 0


def test_rolling_back_after_success_redeploys_the_previous_release(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    from pipeline.operations import rollback

    h = harness(session, ready_env, spec, clock)
    v1 = first_release_on_blue(h, session, spec)
    register_targets(session, spec, Slot.GREEN, spec.desired_count)
    put_traffic(session, ready_env, spec, Slot.GREEN, start=clock.now(), seconds=1800)
    assert h.deploy("2.0.0").phase is Phase.SUCCEEDED

    state = rollback(h.ctx, REF, STRATEGY)

    assert state is not None and state.phase is Phase.SUCCEEDED and state.release == v1
    assert state.new_slot is Slot.BLUE and h.router.get_weights() == Weights(100, 0)
    assert desired_count(ready_env, "orders-green") == 0
