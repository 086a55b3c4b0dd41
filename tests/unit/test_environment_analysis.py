"""How an environment shapes a service's strategy: synthetic traffic, on_inconclusive and
max_pause, with defaults that depend on whether a person is expected there."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.config.project import EnvironmentConfig
from pipeline.core.analysis import AnalysisSpec
from pipeline.core.plan import Strategy
from pipeline.core.steps import Analyze, Approve, Pause, SetWeight

STRATEGY = Strategy(
    steps=(SetWeight(10), Pause(30), Analyze(), Pause(None), Approve()),
    analysis=AnalysisSpec(interval_seconds=10),
    keep_previous=300,
)


def env(**keys: Any) -> EnvironmentConfig:
    base = {"platform": "local", "owner": "dev", "local": {"port": 9000}}
    return EnvironmentConfig.model_validate({**base, **keys})


def test_an_environment_nobody_watches_sends_synthetic_traffic_and_rolls_back() -> None:
    spec = env().shape(STRATEGY).analysis
    assert (spec.synthetic_rate, spec.on_inconclusive) == (10.0, "rollback")


def test_an_environment_that_requires_an_approval_sends_none_and_pauses() -> None:
    spec = env(requires={"approval": "ops"}).shape(STRATEGY).analysis
    assert (spec.synthetic_rate, spec.on_inconclusive) == (0.0, "pause")


def test_explicit_settings_win_over_the_defaults() -> None:
    quiet_prod = env(requires={"approval": "ops"}, analysis={"traffic": {"enabled": True, "rate": 2.5}})
    assert quiet_prod.shape(STRATEGY).analysis.synthetic_rate == 2.5
    lenient = env(analysis={"traffic": {"enabled": False}, "on_inconclusive": "promote"}).shape(STRATEGY)
    assert (lenient.analysis.synthetic_rate, lenient.analysis.on_inconclusive) == (0.0, "promote")


def test_max_pause_caps_timed_waits_and_leaves_open_ones_alone() -> None:
    shaped = env(max_pause="2s").shape(STRATEGY)
    assert shaped.steps == (SetWeight(10), Pause(2), Analyze(), Pause(None), Approve())
    assert shaped.analysis.interval_seconds == 2 and shaped.keep_previous == 2
    assert env().shape(STRATEGY).steps == STRATEGY.steps


@pytest.mark.parametrize(
    ("keys", "where"),
    [
        ({"analysis": {"traffic": {"rate": 0}}}, ("analysis", "traffic", "rate")),
        ({"analysis": {"on_inconclusive": "maybe"}}, ("analysis", "on_inconclusive")),
        ({"analysis": {"traffic": {"rps": 5}}}, ("analysis", "traffic", "rps")),
        ({"max_pause": "0s"}, ("max_pause",)),
    ],
)
def test_bad_settings_are_refused_at_their_key(keys: dict[str, Any], where: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        env(**keys)
    assert [tuple(map(str, e["loc"]))[: len(where)] for e in caught.value.errors()] == [where]
