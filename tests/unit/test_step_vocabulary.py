"""One step vocabulary: ``service.yaml`` steps and persisted state share the core codec."""

from __future__ import annotations

from typing import get_args

import pytest

from pipeline.config.deploy import DeployConfig, StepConfig
from pipeline.core.steps import (
    STEP_KEYS,
    STRATEGY_NAMES,
    Analyze,
    Approve,
    LoadStage,
    Pause,
    SetWeight,
    Step,
    TestStage,
    step_from_dict,
    step_to_dict,
)

EVERY_STEP: tuple[Step, ...] = (
    SetWeight(25),
    Pause(30.0),
    Pause(None),
    Analyze(),
    LoadStage(),
    TestStage(),
    Approve(),
)


def test_the_config_step_keys_are_the_core_step_keys() -> None:
    assert set(StepConfig.model_fields) == set(STEP_KEYS)
    assert {next(iter(step_to_dict(step))) for step in EVERY_STEP} == set(STEP_KEYS)


@pytest.mark.parametrize("step", EVERY_STEP, ids=repr)
def test_a_step_survives_the_state_codec_and_the_config_model(step: Step) -> None:
    entry = step_to_dict(step)
    assert step_from_dict(entry) == step
    assert StepConfig.model_validate(entry).to_step() == step


def test_the_config_strategy_names_are_the_core_ones() -> None:
    annotation = DeployConfig.model_fields["strategy"].annotation
    assert get_args(annotation) == STRATEGY_NAMES == ("blue-green", "canary", "linear")


def test_an_unknown_step_key_names_the_vocabulary() -> None:
    with pytest.raises(ValueError, match="use one of set_weight, pause, analyze, load, test, approve"):
        step_from_dict({"wait": 3})
