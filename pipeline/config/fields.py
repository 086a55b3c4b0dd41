"""The base model and the field types shared by ``pipeline.yaml`` and ``service.yaml``.

Every config model derives from ``Model``: frozen, unknown keys forbidden, no NaN or
infinity. Models state their cross-field rules in two hooks that ``Model`` runs inside
one wrap validator, so that a rule violation is reported *together with* the field
errors of the same mapping instead of hiding behind them:

- ``_presence_rules(data)`` sees the raw mapping and runs always (e.g. ``kind: ecs``
  needs an ``ecs:`` block); it must cope with values of any type;
- ``_value_rules()`` sees the validated model and runs when every field is valid
  (e.g. ``memory`` must fit ``cpu``).

Both return ``Issue``s: a location relative to the model and a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictStr,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema

from pipeline.config.durations import DURATION_PATTERN, parse_duration
from pipeline.core.steps import format_seconds

Loc = tuple[str | int, ...]
Issue = tuple[Loc, str]


class Model(BaseModel):
    """Frozen, closed config model; see the module docstring for the rule hooks."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @classmethod
    def _presence_rules(cls, data: dict[Any, Any]) -> list[Issue]:
        """Problems visible in the raw mapping (which keys must or must not be there)."""
        return []

    def _value_rules(self) -> list[Issue]:
        """Problems between already-valid fields."""
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _apply_rules(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        issues = cls._presence_rules(data) if isinstance(data, dict) else []
        try:
            model = handler(data)
        except ValidationError as exc:
            raise _combined(cls.__name__, exc, issues) from None
        issues += model._value_rules()
        if issues:
            raise _combined(cls.__name__, None, issues)
        return model


def _combined(title: str, exc: ValidationError | None, issues: list[Issue]) -> ValidationError:
    """One ``ValidationError`` holding the field errors of ``exc`` and the rule ``issues``.

    Field errors keep their type, location, message and input (the context is dropped:
    messages are already rendered).
    """
    details: list[InitErrorDetails] = []
    if exc is not None:
        details += [
            InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"]), loc=e["loc"], input=e["input"])
            for e in exc.errors(include_url=False)
        ]
    details += [
        InitErrorDetails(type=PydanticCustomError("rule", message), loc=loc, input=None)
        for loc, message in issues
    ]
    return ValidationError.from_exception_data(title, details)


def presence(
    data: dict[Any, Any], setting: str, value: str, required: set[str], forbidden: set[str]
) -> list[Issue]:
    """Issues for keys that ``setting: value`` (e.g. ``kind: ecs``) requires or forbids.

    A key whose value is null counts as absent.
    """
    issues: list[Issue] = [
        ((key,), f"{setting} {value} requires `{key}:`, which is missing: add it")
        for key in sorted(required)
        if data.get(key) is None
    ]
    issues += [
        ((key,), f"`{key}:` does not apply to {setting} {value}: remove it, or change `{setting}`")
        for key in sorted(forbidden)
        if data.get(key) is not None
    ]
    return issues


# --- names and text ---------------------------------------------------------------------

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,29}$"
Text = Annotated[StrictStr, Field(min_length=1)]
"""A non-empty string."""


def _check_relative(value: str) -> str:
    parts = value.replace("\\", "/").split("/")
    if value.startswith(("/", "\\")) or (len(value) > 1 and value[1] == ":") or ".." in parts:
        raise PydanticCustomError(
            "relative_path",
            "{value} leaves the project: use a path relative to the project root, without '..'",
            {"value": repr(value)[:60]},
        )
    return value


RelPath = Annotated[StrictStr, Field(min_length=1), AfterValidator(_check_relative)]
"""A path (or glob) relative to the project root that stays inside it."""


class Matches:
    """Annotation: the string must match ``pattern``; the message says what was expected.

    A pattern ending in ``$`` must match the whole value (``re.fullmatch``: with
    ``re.match``, ``$`` also matches before a final newline, so ``"prod\n"`` would pass);
    any other pattern is a prefix (``^arn:aws:iam:``). Also publishes ``pattern`` in the
    JSON schema.
    """

    def __init__(self, pattern: str, expected: str) -> None:
        self.regex = re.compile(pattern)
        self.whole = pattern.endswith("$")
        self.expected = expected

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.regex.pattern
        return json_schema

    def _check(self, value: str) -> str:
        found = self.regex.fullmatch(value) if self.whole else self.regex.match(value)
        if not found:
            raise PydanticCustomError(
                "format", "{value} is not {expected}", {"value": repr(value)[:80], "expected": self.expected}
            )
        return value


Name = Annotated[
    StrictStr,
    Matches(
        NAME_PATTERN,
        "a valid name: use 1-30 lowercase letters, digits and '-', starting with a letter (e.g. 'orders')",
    ),
]
"""Service, environment and organisation names: lowercase ``[a-z][a-z0-9-]*``, <= 30 chars."""

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
EnvName = Annotated[StrictStr, Field(pattern=ENV_NAME_PATTERN)]


def _env_value(value: object) -> object:
    """Environment values are strings; YAML scalars (``4``, ``true``) are converted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


EnvValue = Annotated[StrictStr, BeforeValidator(_env_value)]
EnvVars = dict[EnvName, EnvValue]

# --- numbers ----------------------------------------------------------------------------

Percent = Annotated[int, Field(strict=True, ge=0, le=100)]
Count = Annotated[int, Field(strict=True, ge=0)]
PositiveInt = Annotated[int, Field(strict=True, ge=1)]
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
Fraction = Annotated[float, Field(strict=True, ge=0, le=1)]
"""A share between 0 and 1: ``0.01`` means 1%."""

# --- durations --------------------------------------------------------------------------

DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0, "description": "seconds"},
        {"type": "string", "pattern": DURATION_PATTERN, "examples": ["500ms", "30s", "5m", "1h30m"]},
    ]
}


def duration_seconds(value: object) -> float:
    """``parse_duration`` for validators: raises a pydantic error carrying its message."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from exc


class Within:
    """After-validator: a duration within ``[low, high]`` seconds (``> low`` if ``open_low``)."""

    def __init__(self, low: float, high: float | None = None, *, open_low: bool = False) -> None:
        self.low, self.high, self.open_low = low, high, open_low

    def __call__(self, seconds: float) -> float:
        too_low = seconds <= self.low if self.open_low else seconds < self.low
        if too_low or (self.high is not None and seconds > self.high):
            raise PydanticCustomError(
                "duration_range",
                "{value} is out of range: {allowed}",
                {"value": _seconds(seconds), "allowed": self.describe()},
            )
        return seconds

    def describe(self) -> str:
        if self.high is not None:
            return f"must be between {_seconds(self.low)} and {_seconds(self.high)}"
        if self.open_low:
            return f"must be longer than {_seconds(self.low)}"
        return f"must be at least {_seconds(self.low)}"


def _seconds(value: float) -> str:
    return "0s" if value == 0 else format_seconds(value)


Duration = Annotated[float, BeforeValidator(duration_seconds), WithJsonSchema(DURATION_SCHEMA)]
"""Seconds; written as a number or ``500ms``/``30s``/``5m``/``1h``/``1h30m``. Never negative."""

PositiveDuration = Annotated[Duration, AfterValidator(Within(0, open_low=True))]
