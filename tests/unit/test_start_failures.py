"""The start verdict of a replica (pure: a log file, no process): when it is clear that a
release cannot start, and that the reason quotes the last run's output or the health answer."""

from __future__ import annotations

from pathlib import Path

from pipeline.local.replicas.start_failures import CRASH_LOOP_RUNS, StartFailures
from pipeline.local.specs import HealthCheck

HEALTH = HealthCheck(interval=5.0, unhealthy_threshold=2)


def _run(verdict: StartFailures, log: Path, output: str, how: str = "exited with code 1") -> None:
    verdict.run_started()
    with log.open("a") as f:
        f.write(output)
    verdict.run_ended(how)


def test_runs_in_a_row_without_a_passing_check_fail_quoting_the_last_runs_output(tmp_path: Path) -> None:
    log = tmp_path / "blue-0.log"
    verdict = StartFailures(0, log, HEALTH)
    for n in range(1, CRASH_LOOP_RUNS):
        _run(verdict, log, f"run {n}\nTraceback: old error {n}\n")
        assert verdict.failure == ""
    _run(verdict, log, "starting\n\nKeyError: 'DATABASE_URL'\n")
    assert verdict.failure.startswith("replica 0 exited with code 1, 3 runs in a row")
    assert verdict.failure.endswith("its last output: starting | KeyError: 'DATABASE_URL'")
    assert "old error" not in verdict.failure  # only the last run's lines


def test_a_passing_check_resets_the_count_and_clears_the_verdict(tmp_path: Path) -> None:
    log = tmp_path / "blue-0.log"
    verdict = StartFailures(0, log, HEALTH)
    for _ in range(CRASH_LOOP_RUNS):
        _run(verdict, log, "boom\n")
    assert verdict.failure
    verdict.run_started()
    verdict.checked(True, "", 200, now=0.0)
    verdict.run_ended("exited with code 0")  # a run that passed once is not a failed start
    assert (verdict.failure, verdict.failed_runs) == ("", 0)


def test_error_answers_fail_after_the_threshold_spans_its_interval_but_no_answer_never_does(
    tmp_path: Path,
) -> None:
    verdict = StartFailures(1, tmp_path / "blue-1.log", HEALTH)
    verdict.run_started()
    for t in range(0, 100):  # still starting: nothing listens yet, for as long as it takes
        verdict.checked(False, "health check GET /health failed: ClientConnectorError", None, now=t * 0.1)
    assert verdict.failure == ""
    why = 'health check GET /health answered 503: {"why": "no database"}'
    verdict.checked(False, why, 503, now=10.0)
    verdict.checked(False, why, 503, now=15.0)
    assert verdict.failure == ""  # two answers, but only 5 s of the 10 s (2 x 5 s) yet
    verdict.checked(False, why, 503, now=20.0)
    assert verdict.failure == f"replica 1 keeps failing its health check: {why}"
