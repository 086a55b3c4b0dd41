"""Numbers the plane reads from its own environment (``env_number``): router limits, log
rotation, when router spans are held back. A bad value names the variable and the value."""

from __future__ import annotations

import math

import pytest

from pipeline.local.environ import env_number
from pipeline.local.http.limits import MAX_CONNECTIONS_ENV, RouterLimits
from pipeline.local.plane.otlp import SPANS_QUIET_ENV, spans_quiet


@pytest.mark.parametrize("raw, expected", [("", 7.0), ("  ", 7.0), ("2.5", 2.5), (" 3 ", 3.0)])
def test_a_positive_number_or_the_default(raw: str, expected: float) -> None:
    assert env_number({"N": raw}, "N", 7.0) == expected
    assert env_number({}, "N", 7.0) == 7.0


@pytest.mark.parametrize("raw", ["0", "-1", "lots", "nan", "NaN", "inf", "-inf", "1e400"])
def test_anything_else_is_refused_with_the_variable_and_the_value(raw: str) -> None:
    with pytest.raises(ValueError, match=rf"^\$N='{raw}' is not a positive number; unset it to use 7$"):
        env_number({"N": raw}, "N", 7.0)


def test_zero_and_infinity_only_where_they_mean_something() -> None:
    assert env_number({"N": "0"}, "N", 7.0, zero_ok=True) == 0.0
    assert math.isinf(env_number({"N": "inf"}, "N", 7.0, infinite_ok=True))
    with pytest.raises(ValueError, match="is not a number of 0 or more"):
        env_number({"N": "-0.5"}, "N", 7.0, zero_ok=True)
    with pytest.raises(ValueError, match="is not a number of 0 or more"):
        env_number({"N": "nan"}, "N", 7.0, zero_ok=True, infinite_ok=True)


def test_the_plane_settings_use_it() -> None:
    """Before, `inf` for the connection cap crashed the plane (OverflowError) and `nan` passed."""
    with pytest.raises(ValueError, match=rf"\${MAX_CONNECTIONS_ENV}='inf' is not a positive number"):
        RouterLimits.from_env({MAX_CONNECTIONS_ENV: "inf"})
    assert spans_quiet({}) == 1000.0 and spans_quiet({SPANS_QUIET_ENV: "0"}) == 0.0
    assert math.isinf(spans_quiet({SPANS_QUIET_ENV: "inf"}))
