"""Numbers in YAML that no setting can hold, refused before Python converts them.

PyYAML converts a plain scalar that looks like a number with ``int()`` or ``float()``:
an integer of more than 4300 digits raises Python's own ``ValueError`` ("Exceeds the
limit (4300 digits) for integer string conversion; use sys.set_int_max_str_digits()"),
a hexadecimal one converts but cannot be printed later, and ``1.0e+400`` becomes
infinity. ``checked_number`` wraps PyYAML's constructors so each of these is a
``BadNumber`` (a YAML constructor error carrying the node) with a message in our words.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from yaml.nodes import Node

__all__ = ["MAX_DIGITS", "BadNumber", "checked_number"]

MAX_DIGITS = 1_000
"""A number may have at most this many digits: no setting needs more, and Python refuses
to convert integers of more than 4300 digits (in its own words, which must not leak)."""

_INFINITIES = frozenset({".inf", "+.inf", "-.inf"})


class BadNumber(yaml.constructor.ConstructorError):
    """A number YAML accepts but no setting can hold; ``message`` says so in our words."""

    def __init__(self, node: Node, message: str) -> None:
        super().__init__(None, None, message, node.start_mark)
        self.node = node
        self.message = message


def checked_number(constructor: Any) -> Any:
    """``constructor`` (PyYAML's int or float) refusing numbers too large for a setting."""

    def construct(loader: yaml.SafeLoader, node: Node) -> Any:
        text = str(node.value)
        digits = sum(c.isalnum() for c in text)  # hex digits too: 0xfff... is as large
        if digits > MAX_DIGITS:
            raise BadNumber(node, _too_large(f"a number {len(text)} characters long"))
        try:
            value = constructor(loader, node)
        except (ValueError, OverflowError) as exc:
            unreadable = f"{_shown(text)} is not a number YAML can read: quote it if it is text"
            raise BadNumber(node, unreadable) from exc
        if isinstance(value, float) and math.isinf(value) and text.lower() not in _INFINITIES:
            raise BadNumber(node, _too_large(f"{_shown(text)} (beyond the largest number, about 1.8e308)"))
        return value

    return construct


def _too_large(what: str) -> str:
    return f"{what} is too large for any setting: use a value in the setting's range"


def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
