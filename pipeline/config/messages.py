"""Pydantic validation errors rewritten as ``Problem``s a person can act on.

Locations are mapped to lines by the ``Document``; messages are rephrased from
pydantic's "Input should be ..." to "must be ..., got X", unknown keys list the keys
allowed at that place (with a "did you mean"), and missing keys say so.
"""

from __future__ import annotations

import difflib
import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from pipeline.config.source import Document, Problem

__all__ = ["describe_value", "validation_problems"]

_PYDANTIC_PHRASE = re.compile(r"^(Input|String|Value|Tuple|List|Dictionary|Object) should ")
_MAPPING_TYPES = {"model_type", "dict_type", "model_attributes_type"}
_LIST_TYPES = {"tuple_type", "list_type", "iterable_type", "set_type"}


def validation_problems(doc: Document, model: type[BaseModel], exc: ValidationError) -> list[Problem]:
    """One ``Problem`` per error in ``exc``, raised while validating ``doc`` as ``model``."""
    errors = exc.errors(include_url=False)
    inner = [err["loc"] for err in errors]
    return [doc.problem(err["loc"], _message(model, err)) for err in errors if not _echo(err, inner)]


def _echo(err: Any, locs: list[tuple[Any, ...]]) -> bool:
    """A "too short" error caused only by invalid items, which are reported themselves
    (pydantic counts the items that were valid: ``[bad]`` has 0 items "after validation")."""
    loc = err["loc"]
    return bool(err["type"] == "too_short" and any(len(o) > len(loc) and o[: len(loc)] == loc for o in locs))


def describe_value(value: object) -> str:
    """A short, YAML-flavoured rendering of a user's value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple | set):
        return "a list"
    if isinstance(value, str | int | float):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return f"a {type(value).__name__} value"


def _message(model: type[BaseModel], err: Any) -> str:
    kind, loc, value = err["type"], err["loc"], err.get("input")
    if kind == "missing":
        return "required key is missing: add it"
    if kind == "extra_forbidden":
        return _unknown_key(model, loc)
    if kind in _MAPPING_TYPES:
        return f"must be a mapping of keys to values (key: value), got {describe_value(value)}"
    if kind in _LIST_TYPES:
        return f"must be a list (- item), got {describe_value(value)}"
    message: str = err["msg"]
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if _PYDANTIC_PHRASE.match(message):
        message = _PYDANTIC_PHRASE.sub("must ", message).replace(" after validation", "")
        if not isinstance(value, dict | list | tuple | set):
            message += f", got {describe_value(value)}"
    return message


def _unknown_key(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    key = str(loc[-1]) if loc else "?"
    allowed = _keys_at(model, loc[:-1])
    if not allowed:
        return f"unknown key '{key}': remove it"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key '{key}': {hint}allowed here: {', '.join(allowed)}"


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the mapping at ``loc`` accepts, or ``[]`` if it is not a model."""
    current: Any = model
    for part in loc:
        current = _child(_unwrap(current), part)
        if current is None:
            return []
    target = _unwrap(current)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return [info.alias or name for name, info in target.model_fields.items()]
    return []


def _child(tp: Any, part: Any) -> Any:
    """The annotation one step below ``tp`` along ``part`` (field, dict value, list item)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, info in tp.model_fields.items():
            if (info.alias or name) == part:
                return info.annotation
        return None
    origin = get_origin(tp)
    if origin is dict:
        return get_args(tp)[1]
    if origin in (tuple, list):
        return get_args(tp)[0]
    return None


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``| None`` until a model, container or plain type remains."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            options = [arg for arg in get_args(tp) if arg is not type(None)]
            if len(options) != 1:
                return tp
            tp = options[0]
        else:
            return tp
