"""Ramps judged from recorded step figures: the knee, the first limit and the ramp's gate.

``orders_ramp_db_limit_steps.json`` is what the step shape recorded in a real ramp of 1, 5
and 9 users, 3 s a step, against orders with one database connection and 50 ms queries
(``ORDERS_DB_CONNECTIONS=1 ORDERS_DB_QUERY_MS=50``): no failure, p95 67 → 170 → 380 ms.
The throttle cases are built from records shaped like the shape's own output.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import load_project
from pipeline.core.errors import PlatformError
from pipeline.core.model import Measurement, Slot
from pipeline.loadtest.knee import analyse, markdown_lines
from pipeline.loadtest.ramp import Ramp, StepFigures, metrics_throttles, read_steps, with_function_throttles
from pipeline.loadtest.settings import LoadSettings, Thresholds, settings_from_config
from pipeline.testing import ActionLog, FakeMetrics
from tests.unit.support.project import WriteProject
from tests.unit.test_config import NOTIFY, ORDERS, PIPELINE, only_problem, problems

FIXTURES = Path(__file__).parent / "test_loadtest_fixtures"
LIMITS = Thresholds(fail_ratio=0.01, p95_ms=200)


def step(users: int, requests: int = 100, failures: int = 0, p95: int = 50, **signals: int) -> StepFigures:
    """A step whose p95 is ``p95`` ms: 95 fast requests and the slowest 5 at ``p95``."""
    fast, slow = requests - requests // 20, requests // 20
    record: dict[str, Any] = {
        "users": users, "started": 0.0, "ended": 10.0, "requests": requests, "failures": failures,
        "response_times": {"5": fast, str(p95): slow}, **signals,
    }
    return StepFigures.from_record(record)


def test_a_ramp_steps_from_start_to_stop_and_always_ends_on_stop() -> None:
    assert Ramp(5, 50, 5, 10).levels == (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    assert Ramp(5, 50, 5, 10).duration == 100
    assert Ramp(1, 9, 4, 3).levels == (1, 5, 9)
    assert Ramp(2, 7, 4, 3).levels == (2, 6, 7)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((10, 5, 1, 10), "ramp to (5) must not be below from (10)"),
        ((1, 500, 1, 10), "a ramp of 500 steps is more than 100: raise step"),
        ((1, 10, 1, 10, 20), "ramp min_knee 20 must be within 1..10"),
    ],
)
def test_a_ramp_that_makes_no_sense_says_why(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Ramp(*args)


def test_the_recorded_db_limit_ramp_has_its_knee_below_the_top_and_names_the_backend() -> None:
    ramp = Ramp(1, 9, 4, 3)
    outcome = analyse(ramp, read_steps(FIXTURES / "orders_ramp_db_limit_steps.json"), LIMITS)

    assert [v.step.users for v in outcome.verdicts] == [1, 5, 9]
    assert [v.step.p95_ms for v in outcome.verdicts] == [67.0, 170.0, 380.0]
    assert outcome.knee == 5
    assert (outcome.limit.kind, outcome.limit.users) == ("backend_latency", 9)
    assert outcome.limit.evidence == (
        "p95 rose 67 → 170 → 380 ms from 1 to 9 users while failures stayed at 0.00% (no throttles)"
    )
    assert outcome.verdicts[2].reasons == ("p95 380 ms is above the 200 ms limit",)
    assert outcome.check().passed


def test_the_earliest_429s_from_the_edge_are_the_first_limit_even_when_latency_breaks_a_later_step() -> None:
    steps = [
        step(5, p95=40),
        step(10, requests=200, failures=1, p95=60, key_throttled=1),  # within the 1% failure limit
        step(15, p95=400),
    ]

    outcome = analyse(Ramp(5, 15, 5, 10), steps, LIMITS)

    assert outcome.knee == 10
    assert (outcome.limit.kind, outcome.limit.users) == ("per_key_throttle", 10)
    assert outcome.limit.evidence == "1 of 200 requests got 429 from the API edge at 10 users"


def test_lambda_runtime_429s_are_function_concurrency() -> None:
    steps = [step(5), step(10, failures=20, function_throttled=20, key_throttled=2)]

    outcome = analyse(Ramp(5, 10, 5, 10), steps, LIMITS)

    assert outcome.knee == 5
    assert (outcome.limit.kind, outcome.limit.users) == ("function_concurrency", 10)
    assert outcome.limit.evidence == "20 of 100 requests got 429 from the Lambda runtime at 10 users"


def test_server_errors_without_throttles_are_errors_not_backend_latency() -> None:
    steps = [step(5, p95=50), step(10, failures=10, p95=500, server_errors=10)]

    outcome = analyse(Ramp(5, 10, 5, 10), steps, LIMITS)

    assert (outcome.limit.kind, outcome.limit.users) == ("errors", 10)
    assert outcome.limit.evidence == "10 of 100 requests failed at 10 users (10 server errors, no throttles)"


def test_a_ramp_within_every_limit_has_its_knee_at_the_top_and_no_limit() -> None:
    outcome = analyse(Ramp(5, 15, 5, 10), [step(5), step(10), step(15)], LIMITS)

    assert outcome.knee == 15
    assert outcome.limit.kind == "none" and outcome.limit.users is None
    assert outcome.headline == "knee at 15 users; first limit: no limit reached"


def test_a_first_step_over_the_limits_has_no_knee_and_fails_the_gate() -> None:
    outcome = analyse(Ramp(5, 10, 5, 10), [step(5, p95=900), step(10, p95=950)], LIMITS)

    assert outcome.knee is None
    assert outcome.limit.kind == "backend_latency"
    check = outcome.check()
    assert not check.passed
    assert check.reason == "no step met the thresholds: at 5 users p95 900 ms is above the 200 ms limit"


def test_a_knee_below_min_knee_fails_the_gate_naming_the_setting() -> None:
    steps = [step(5), step(10, p95=300), step(15, p95=600)]

    check = analyse(Ramp(5, 15, 5, 10, min_knee=10), steps, LIMITS).check()

    assert (check.value, check.limit, check.passed) == (5.0, 10.0, False)
    assert check.reason == "the knee is at 5 users, below the 10 required (load.ramp.min_knee)"


def test_a_step_that_sent_nothing_does_not_count_toward_the_knee() -> None:
    outcome = analyse(Ramp(5, 10, 5, 10), [step(5), step(10, requests=0)], Thresholds())

    assert outcome.knee == 5
    assert outcome.verdicts[1].reasons == ("no request was made in this step",)


def test_the_markdown_section_has_a_row_per_step_with_its_verdict() -> None:
    outcome = analyse(Ramp(5, 10, 5, 10), [step(5), step(10, failures=5, p95=60, key_throttled=5)], LIMITS)

    lines = markdown_lines(outcome)

    assert lines[0].startswith("Ramp 5 → 10 users by 5, 10 s a step · knee: **5 users** · first limit: per")
    assert "| 10 | 100 | 5 | 10 | 60 | 5 | 0 | 0 | ❌ failure ratio 5.00% is above the 1.00% limit |" in lines
    assert all(line.count("|") in (0, 10) for line in lines)


def test_missing_or_foreign_step_files_are_platform_errors(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="the ramp recorded no step"):
        read_steps(tmp_path / "ramp_steps.json")
    (tmp_path / "ramp_steps.json").write_text(json.dumps({"users": 1}))
    with pytest.raises(PlatformError, match="cannot read the ramp's steps"):
        read_steps(tmp_path / "ramp_steps.json")


def test_with_a_ramp_users_and_duration_follow_it() -> None:
    ramp = Ramp(5, 50, 5, 10)
    with pytest.raises(ValueError, match=r"with a ramp, users and duration follow it \(50 users"):
        LoadSettings(Path("x.py"), users=20, duration=100, ramp=ramp)
    assert LoadSettings(Path("x.py"), users=50, duration=100, ramp=ramp).ramp == ramp


def test_load_ramp_in_service_yaml_becomes_the_settings(write_project: WriteProject) -> None:
    service = ORDERS + """
    load:
      locustfile: loadtests/orders.py
      ramp: {from: 5, to: 50, step: 5, step_duration: 10s, min_knee: 20}
      thresholds: {p95_ms: 300}
    """
    project = load_project(write_project(PIPELINE, {"orders": service}))

    settings = settings_from_config(project.service("orders").load)

    assert settings is not None and settings.ramp == Ramp(5, 50, 5, 10.0, min_knee=20)
    assert (settings.users, settings.duration) == (50, 100.0)


@pytest.mark.parametrize(
    ("ramp", "expected"),
    [
        ("{from: 10, to: 5, step: 1, step_duration: 10s}", "19: load.ramp.to: to (5) is below from (10)"),
        ("{from: 1, to: 5, step: 1, step_duration: 0.5s}", "19: load.ramp.step_duration: 500ms is out"),
        ("{from: 1, to: 5, step: 1, step_duration: 1s, min_knee: 9}", "19: load.ramp.min_knee: min_knee 9"),
    ],
)
def test_ramp_mistakes_are_reported_with_their_line_and_key(
    write_project: WriteProject, ramp: str, expected: str
) -> None:
    service = ORDERS + f"""
    load:
      locustfile: loadtests/orders.py
      ramp: {ramp}
    """
    found = problems(write_project(PIPELINE, {"orders": service}))

    assert len(found) == 1 and expected in found[0], found


def test_users_or_duration_next_to_a_ramp_are_reported(write_project: WriteProject) -> None:
    service = ORDERS + """
    load:
      locustfile: loadtests/orders.py
      duration: 30s
      ramp: {from: 1, to: 5, step: 1, step_duration: 1s}
    """
    found = problems(write_project(PIPELINE, {"orders": service}))

    assert len(found) == 1 and "load.duration: duration is set by the ramp" in found[0], found


def test_lambda_throttles_from_the_metrics_port_count_once_and_name_function_concurrency() -> None:
    # Behind API Gateway a Lambda throttle reaches clients as a 500 (the ramp books a server
    # error); only the platform's metrics say it was a throttle.
    metrics = FakeMetrics(ActionLog())
    metrics.source = lambda slot, since, until: Measurement(
        requests=100, errors=0, extra=(("throttles", 7.0 if since >= 10 and slot is Slot.GREEN else 0.0),)
    )
    steps = [step(5), replace(step(10, failures=7, server_errors=7), started=10.0, ended=20.0)]

    counted = with_function_throttles(steps, metrics_throttles(metrics))
    outcome = analyse(Ramp(5, 10, 5, 10), counted, LIMITS)

    assert [s.function_throttled for s in counted] == [0, 7]
    assert (outcome.limit.kind, outcome.limit.users) == ("function_concurrency", 10)


def test_a_throttle_seen_in_answers_and_in_metrics_counts_once_and_a_dead_probe_changes_nothing() -> None:
    steps = [step(5, function_throttled=4)]

    def unreachable(since: float, until: float) -> int:
        raise PlatformError("metrics unavailable: the plane is down")

    assert with_function_throttles(steps, lambda since, until: 3)[0].function_throttled == 4
    assert with_function_throttles(steps, lambda since, until: 9)[0].function_throttled == 9
    assert with_function_throttles(steps, unreachable) == tuple(steps)


@pytest.mark.parametrize(
    ("quota", "problem"), [(60, None), (59, "lower than the load stage's planned 60 requests")]
)
def test_a_quota_is_compared_with_the_ramps_planned_requests(
    write_project: WriteProject, quota: int, problem: str | None
) -> None:
    # 1, 2 and 3 users for 10 s each: 2 users on average for 30 s, about 60 requests
    service = NOTIFY + f"""
    api:
      keys: required
      plans: {{trial: {{rate: 10/s, quota: {quota}/day}}}}
    load:
      locustfile: loadtests/notify.py
      ramp: {{from: 1, to: 3, step: 1, step_duration: 10s}}
    """
    root = write_project(PIPELINE, {"notify": service})

    if problem is None:
        assert load_project(root).service("notify").load is not None
    else:
        assert problem in only_problem(root)


def test_a_ramp_that_recorded_no_step_fails_its_gate_and_says_so() -> None:
    outcome = analyse(Ramp(5, 10, 5, 10), [], LIMITS)

    assert outcome.knee is None and outcome.limit.evidence == "the ramp recorded no step"
    assert outcome.check().reason == "no step met the thresholds: at 5 users the ramp recorded no step"
