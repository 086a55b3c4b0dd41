"""`pipeline deploy --resume` and `pipeline continue` hold a stored deployment to the same rule
as a new one: the credentials of the process that runs the rest must outlast what is left of
its plan, or nothing changes.

The ``aws`` fixture's keys are fixed temporary credentials (a session token, no stated
expiry) as an OIDC step leaves them; the project assumes a role with them, so they last one
hour from now (``pipeline.aws.credentials``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.app import App
from pipeline.aws.bootstrap import execute, plan_environment
from pipeline.aws.credentials import remaining_span
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment
from pipeline.aws.state.lock import DynamoLockManager
from pipeline.cli.main import main
from pipeline.core.errors import UsageError
from pipeline.core.model import Weights
from pipeline.core.plan import Strategy, new_deployment
from pipeline.core.state import Action, DeploymentState, Hold, Phase, SetTraffic, Timeouts
from pipeline.core.steps import Approve, Pause, SetWeight, Step
from pipeline.operations import Context, resume, resume_paused
from pipeline.testing import CollectingSink, FakeClock, release
from tests.adapters.support.ecs import REF, write_project

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)

TIMEOUTS = Timeouts(ready=60, verify=30, stage=60, hold=86400, poll=5)


@pytest.fixture
def app(session: AwsSession, ecs_env: AwsEnvironment, clock: FakeClock, tmp_path: Path) -> App:
    execute(plan_environment(session, ecs_env, clock))  # the state table
    write_project(tmp_path, ecs_env)
    return App(tmp_path, clock)


def stored(app: App, *steps: Step, step: int, pending: Action) -> DeploymentState:
    """A deployment of 2.0.0 under way at ``step`` (0-based), saved in the environment's table."""
    now = app.clock.now()
    state = new_deployment(
        deployment_id="d-resume1", ref=REF, release=release("2.0.0"), previous=None,
        strategy=Strategy(steps=steps, timeouts=TIMEOUTS), actor="ci", now=now,
    )
    state = state.evolve(steps=steps, stable=release("1.0.0"), phase=Phase.PROGRESSING,
                         step_index=step, pending=pending)
    app.store("aws-test").commit(state, [])
    return state


def context(app: App) -> Context:
    return app.context("aws-test", CollectingSink())


def test_resume_refuses_before_anything_changes_when_a_hold_outlasts_the_credentials(app: App) -> None:
    steps = (SetWeight(20), Approve(), SetWeight(100))
    before = stored(app, *steps, step=0, pending=SetTraffic(Weights(20, 80)))
    ctx = context(app)

    with pytest.raises(UsageError) as caught:
        resume(ctx, REF)

    message = caught.value.message
    assert "the rest of deployment d-resume1 of orders to aws-test (progressing, step 1 of 3)" in message
    assert "holds for `pipeline continue` 24h" in message
    assert "credentials last 59m: a role chained from fixed temporary env credentials" in message
    assert "nothing was changed" in caught.value.hint
    assert "`pipeline deploy --resume` again" in caught.value.hint
    assert ctx.store.load(REF) == before
    assert ctx.store.history(REF) == []  # not even the audit record of the resume
    assert ctx.locks.holder(REF) is None


def test_continue_checks_what_is_left_after_the_pause_it_ends(app: App) -> None:
    stored(app, SetWeight(20), Approve(), Pause(7200), SetWeight(100), step=1, pending=Hold(None))
    ctx = context(app)

    with pytest.raises(UsageError) as caught:
        resume_paused(ctx, REF)

    assert "(progressing, step 3 of 4) may take up to" in caught.value.message
    assert "pauses 2h" in caught.value.message and "holds" not in caught.value.message
    assert "`pipeline continue` again" in caught.value.hint
    assert ctx.store.receive(REF) == [] and ctx.store.history(REF) == []  # nothing queued
    short = stored(app, SetWeight(20), Approve(), Pause(600), SetWeight(100), step=2, pending=Hold(None))
    assert ctx.resumable is not None
    ctx.resumable(short, "continue")  # ten minutes and the final switch fit in the hour


def test_continue_for_a_live_run_is_queued_for_it_whatever_this_process_holds(
    app: App, session: AwsSession, ecs_env: AwsEnvironment, clock: FakeClock
) -> None:
    stored(app, SetWeight(20), Approve(), Pause(7200), SetWeight(100), step=1, pending=Hold(None))
    DynamoLockManager(session, ecs_env.state_table, clock).acquire(REF, "ci@runner:7", ttl=60)
    ctx = context(app)

    assert resume_paused(ctx, REF) is None  # the live run applies it, with its own credentials

    assert [type(s).__name__ for s in ctx.store.receive(REF)] == ["ContinueRequested"]


def test_a_timed_pause_under_way_counts_only_what_is_left_of_it(app: App) -> None:
    now = app.clock.now()
    state = stored(app, SetWeight(20), Pause(7200), SetWeight(100), step=1, pending=Hold(now + 600))

    span, parts = remaining_span(state, now)

    assert "pauses 10m" in parts and "ready" not in " ".join(parts)
    assert span == 600 + 2 * TIMEOUTS.verify
    check = context(app).resumable
    assert check is not None
    check(state, "deploy --resume")  # ten minutes and two weight checks fit in the hour


def test_the_commands_exit_2_with_the_refusal_and_no_traceback(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    stored(app, SetWeight(20), Approve(), Pause(7200), SetWeight(100), step=1, pending=Hold(None))
    root = ["--root", str(app.root)]

    assert main([*root, "deploy", "orders", "--env", "aws-test", "--resume", "--yes"]) == 2
    assert main([*root, "continue", "orders", "--env", "aws-test", "--yes"]) == 2

    err = capsys.readouterr().err
    assert err.count("the rest of deployment d-resume1 of orders to aws-test") == 2
    assert "Traceback" not in err
