"""Durations as people write them in YAML: ``500ms``, ``30s``, ``5m``, ``1h``, ``1h30m``.

``parse_duration`` is the one place that turns such a value into seconds (a float).
Plain numbers are seconds. Units must appear largest first and at most once each
(``1h30m`` and ``1m30s`` are fine, ``30m1h`` is not). Anything else raises
``ValueError`` whose message names the value and shows the accepted forms.
"""

from __future__ import annotations

import math
import re

__all__ = ["DURATION_HELP", "DURATION_PATTERN", "parse_duration"]

DURATION_HELP = "use 500ms, 30s, 5m or 1h (or 1h30m; a plain number means seconds)"

_NUMBER = r"(\d+(?:\.\d+)?)"
_UNITS = (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 0.001))

DURATION_PATTERN = (
    "^(?=\\d)" + "".join(f"(?:{_NUMBER}{unit}{'(?!s)' if unit == 'm' else ''})?" for unit, _ in _UNITS) + "$"
)
"""The string form (ECMA-262 compatible, published in the JSON schema for editors)."""

_REGEX = re.compile(DURATION_PATTERN)


def parse_duration(value: object) -> float:
    """Seconds (``>= 0``, finite) for a YAML duration value.

    Accepts ints and floats (seconds) and strings matching ``DURATION_PATTERN``.
    Raises ``ValueError`` for anything else: booleans, negative or non-finite numbers,
    strings without a unit such as ``"30"``, and prose such as ``"5 minutes"``.
    """
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}: {DURATION_HELP}")
    if isinstance(value, int | float):
        return _checked_number(value)
    if isinstance(value, str):
        return _parse_text(value)
    raise ValueError(f"bad duration {_short(value)}: {DURATION_HELP}")


def _checked_number(value: float) -> float:
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"bad duration {value!r}: must be a finite number of seconds")
    if value < 0:
        raise ValueError(f"bad duration {value!r}: a duration cannot be negative")
    return float(value)


def _parse_text(text: str) -> float:
    match = _REGEX.fullmatch(text.strip())
    if match is None and _is_number(text):
        raise ValueError(f"bad duration {_short(text)}: a quoted number has no unit; write {text.strip()}s")
    if match is None:
        raise ValueError(f"bad duration {_short(text)}: {DURATION_HELP}")
    amounts = zip(match.groups(), _UNITS, strict=True)
    total = sum(float(amount) * seconds for amount, (_, seconds) in amounts if amount)
    if math.isinf(total):
        raise ValueError(f"bad duration {_short(text)}: too large")
    return total


def _is_number(text: str) -> bool:
    return re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", text) is not None


def _short(value: object) -> str:
    """``repr`` of a user value, cut so one bad value cannot flood the report."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
