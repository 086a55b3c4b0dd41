"""Pure routing decisions of the local router: ALB-style path rules and weighted slot choice.

- A ``PathRule`` matches a request path like an ALB path-pattern condition: case
  sensitive, ``*`` matches any run of characters (including none and ``/``), ``?``
  exactly one character, everything else literally. Lower ``priority`` wins (ALB order);
  ties go to the rule registered first.
- ``WeightedPicker`` spreads picks over the two slots in exact proportion to the integer
  weights, interleaved (nginx's smooth weighted round-robin): with 90/10, every run of
  100 picks sends exactly 10 to the 10% slot, one every ten picks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.core.model import Slot, Weights


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression of an ALB path pattern (``/orders*``, ``/api/?/items``)."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True, slots=True)
class PathRule:
    """Send paths matching ``pattern`` to ``service`` (``kind`` "ecs" or "lambda")."""

    service: str
    pattern: str
    priority: int
    kind: str = "ecs"
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", compile_pattern(self.pattern))

    def matches(self, path: str) -> bool:
        return self.regex.fullmatch(path) is not None


class RuleTable:
    """The rules of one environment's listener, kept sorted by priority (stable).

    ``put`` replaces the service's rule (a service has one rule); ``match`` returns the
    first rule whose pattern matches, or None.
    """

    def __init__(self) -> None:
        self._rules: list[PathRule] = []

    def put(self, rule: PathRule) -> None:
        kept = [r for r in self._rules if r.service != rule.service]
        position = len(kept)
        for i, existing in enumerate(kept):
            if rule.priority < existing.priority:
                position = i
                break
        kept.insert(position, rule)
        self._rules = kept

    def remove(self, service: str) -> None:
        self._rules = [r for r in self._rules if r.service != service]

    def match(self, path: str) -> PathRule | None:
        for rule in self._rules:
            if rule.matches(path):
                return rule
        return None

    def rules(self) -> list[PathRule]:
        """The rules in evaluation order (a copy)."""
        return list(self._rules)


class WeightedPicker:
    """Smooth weighted round-robin over the two slots; replaced whole on a weight change,
    so a change is atomic: every pick uses either the old split or the new one."""

    def __init__(self, weights: Weights) -> None:
        self.weights = weights
        self._blue = self._green = 0  # the running scores
        # all traffic on one slot (the usual state between deployments): no arithmetic, and the
        # scores would not move anyway (+w then -w for the one slot, +0 for the other)
        self._only = Slot.BLUE if weights.green == 0 else Slot.GREEN if weights.blue == 0 else None

    def pick(self) -> Slot:
        only = self._only
        if only is not None:
            return only
        blue, green = self.weights.blue, self.weights.green
        self._blue += blue
        self._green += green
        if self._blue >= self._green:
            self._blue -= blue + green
            return Slot.BLUE
        self._green -= blue + green
        return Slot.GREEN


def lambda_function_name(environment: str, service: str) -> str:
    """The Lambda runtime's function for ``service`` in ``environment``: ``<env>_<service>``.

    One function per environment, since one plane serves them all. ``_`` cannot occur in
    environment or service names, so the name is unambiguous, and it is a valid function
    name for the runtime (letters, digits, ``-`` and ``_``), which ``<env>/<service>`` is not.
    """
    return f"{environment}_{service}"


def parse_slot(value: str | None) -> Slot | None:
    """``blue``/``green`` (any case, surrounding blanks ignored) to a Slot, else None."""
    if not value:
        return None
    try:
        return Slot(value.strip().lower())
    except ValueError:
        return None
