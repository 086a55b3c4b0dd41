"""Deployments with no outside traffic, on the example project's real services.

``catalog`` (blue-green, ECS-style replicas) and ``notify`` (linear, the local Lambda
runtime): a good release succeeds in dev and staging on synthetic evidence, a bad one
(a committed ``fault.json``) rolls back. ``orders`` in an environment that sends no
synthetic traffic and pauses on inconclusive analysis: it waits, says what to run, and
obeys ``pipeline continue`` and then ``pipeline abort``. (``orders`` in dev and staging is
covered by the getting-started test.)
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from pipeline.core.model import ServiceRef
from pipeline.core.state import DeploymentState, Hold, Phase
from pipeline.core.steps import Analyze
from tests.local.support.example import Example, environ, example_clone

QUIET = """\
  quiet:                    # nobody uses it, nobody feeds it: a person decides
    platform: local
    owner: dev
    local: {port: {port}}
    max_pause: 2s
    analysis: {traffic: {enabled: false}, on_inconclusive: pause}
"""
BAD = '{"error_rate": 0.5}\n'


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    example = example_clone(tmp_path_factory.mktemp("quiet"), QUIET)
    try:
        yield example
    finally:
        example.stop()


def deploy(example: Example, service: str, env: str) -> subprocess.CompletedProcess[str]:
    return example.pipeline("deploy", service, "--env", env)


def last_outcome(example: Example, service: str, env: str) -> str:
    records = example.store().history(ServiceRef(service, env))
    return next(r.action for r in reversed(records) if r.action.startswith("deployment."))


@pytest.mark.slow
@pytest.mark.parametrize("service", ["catalog", "notify"])
def test_a_good_release_succeeds_in_dev_and_staging_and_a_bad_one_rolls_back(
    example: Example, service: str
) -> None:
    for env in ("dev", "staging"):
        assert deploy(example, service, env).returncode == 0  # the first release: stages only
    example.commit({f"services/{service}/VERSION": "1.1.0\n"}, f"{service} 1.1.0")
    for env in ("dev", "staging"):
        good = deploy(example, service, env)
        assert good.returncode == 0, good.stderr[-3000:]
        assert "synthetic" in good.stderr and "analysis successful" in good.stderr
    example.commit({f"services/{service}/fault.json": BAD}, f"{service}: a bad release")
    bad = deploy(example, service, "dev")
    assert bad.returncode == 6, bad.stderr[-3000:]
    assert last_outcome(example, service, "dev") == "deployment.rolled_back"
    example.commit({f"services/{service}/fault.json": "{}\n"}, f"{service}: fault removed")


def paused_on_analysis(example: Example, ref: ServiceRef, before: str, after: int) -> DeploymentState:
    """Wait (up to two minutes) until the deployment that followed deployment ``before``
    waits for a decision past step ``after``."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = example.store().load(ref)
        if state is None or state.id == before:
            time.sleep(0.2)
            continue
        if state.phase.terminal:
            raise AssertionError(f"ended {state.phase.value} instead of pausing: {state.reason}")
        deciding = state.pending == Hold(None) and isinstance(state.current_step, Analyze)
        if deciding and state.step_index > after:
            return state
        time.sleep(0.2)
    raise AssertionError("the deployment never paused on its analysis")


@pytest.mark.slow
def test_on_inconclusive_pause_waits_says_why_and_obeys_continue_then_abort(example: Example) -> None:
    ref = ServiceRef("orders", "quiet")
    assert deploy(example, "orders", "quiet").returncode == 0
    stable = example.store().load(ref)
    assert stable is not None
    example.commit({"services/orders/VERSION": "1.2.0\n"}, "orders 1.2.0")
    running = subprocess.Popen(["pipeline", "deploy", "orders", "--env", "quiet"], cwd=example.root,
                               env=environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = paused_on_analysis(example, ref, stable.id, after=0)
        assert "analysis inconclusive 3 times" in first.reason
        assert "`pipeline continue orders --env quiet`" in first.reason
        assert "`pipeline abort orders --env quiet`" in first.reason
        assert example.pipeline("continue", "orders", "--env", "quiet", "--yes").returncode == 0
        paused_on_analysis(example, ref, stable.id, after=first.step_index)
        assert example.pipeline("abort", "orders", "--env", "quiet", "--yes").returncode == 0
        _, stderr = running.communicate(timeout=120)
    finally:
        running.kill()
    assert running.returncode == 6, stderr[-3000:]
    state = example.store().load(ref)
    assert state is not None and state.phase is Phase.ABORTED
    assert f"continued step {first.step_index + 1}" in stderr
