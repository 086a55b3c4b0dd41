"""The one weights note both alias routers keep in an alias description."""

from __future__ import annotations

import pytest

from pipeline.core.model import Slot, Weights


@pytest.mark.parametrize("weights", [Weights(100, 0), Weights(0, 100), Weights(37, 63)])
def test_a_note_reads_back_as_the_weights_it_records(weights: Weights) -> None:
    assert Weights.from_note(weights.note()) == weights


def test_the_note_names_both_slots_in_percent() -> None:
    assert Weights.split(Slot.GREEN, 25).note() == "pipeline weights blue=75 green=25"


def test_a_note_is_found_inside_a_longer_description() -> None:
    assert Weights.from_note("deployed by ci; pipeline weights blue=10 green=90") == Weights(10, 90)


@pytest.mark.parametrize(
    "text", ["", "blue=50 green=50", "pipeline weights blue=60 green=60", "pipeline weights blue=x green=1"]
)
def test_text_without_a_valid_note_reads_as_none(text: str) -> None:
    assert Weights.from_note(text) is None
