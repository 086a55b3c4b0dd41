"""Reading one YAML file into data plus the line of every key, never raising.

``read_document`` returns a ``Document``: the constructed data (``None`` when the file is
empty or unreadable), a map from key paths to 1-based line numbers, and the problems
found while reading (missing file, non-UTF-8 bytes, YAML syntax, duplicate keys, two
merge keys in one mapping, YAML 1.1 booleans used as keys, numbers too large to be
settings, alias bombs). ``Document.problem(loc, message)`` turns a location such as a pydantic ``loc``
into a ``Problem`` with the best line: the key's own line when it exists in the file,
otherwise the line of the deepest existing parent (so a missing key points at the
mapping it is missing from).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipeline.config.numbers import MAX_DIGITS, BadNumber, checked_number

__all__ = ["MAX_DIGITS", "Document", "Problem", "parse_yaml", "read_document", "render_path"]

MAX_VALUES = 100_000
"""A document may expand (through YAML aliases) to at most this many values."""

@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration problem: ``file:line: key.path: message``."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def render_path(loc: Sequence[object]) -> str:
    """``("deploy", "steps", 1, "pause")`` -> ``deploy.steps[1].pause``."""
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass(frozen=True, slots=True)
class Document:
    """A YAML file as data, with key lines; ``failed`` when it could not be read at all."""

    file: str
    data: Any = None
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    failed: bool = False

    def line_of(self, loc: Sequence[object]) -> int:
        """Line of the deepest prefix of ``loc`` that exists in the file (1 if none)."""
        path = tuple(str(part) for part in loc if part != "[key]")
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def problem(self, loc: Sequence[object], message: str) -> Problem:
        return Problem(self.file, self.line_of(loc), render_path(loc), message)


def read_document(root: Path, file: str, *, missing: str = "") -> Document:
    """Read ``root/file`` (``file`` uses '/'); ``missing`` explains what to do if it is absent."""
    try:
        raw = (root / file).read_bytes()
    except FileNotFoundError:
        return _failed(file, 1, f"file not found: {missing or 'create it'}")
    except OSError as exc:
        return _failed(file, 1, f"cannot read the file: {exc.strerror or exc}; check its permissions")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return _failed(file, line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x}): save the file as UTF-8")
    return parse_yaml(file, text)


def parse_yaml(file: str, text: str) -> Document:
    """Parse one YAML document; every failure becomes a problem of the result."""
    loader: _Loader | None = None
    paths: dict[int, str] = {}  # node id -> rendered key path, for problems found while constructing
    try:
        loader = _Loader(text)  # checks every character already
        node = loader.get_single_node()
        if node is None:
            return Document(file, None, {(): 1})
        lines, problems = _index(file, node, paths)
        if _expanded_size(node, {}) > MAX_VALUES:
            problems.append(Problem(file, node.start_mark.line + 1, "", _TOO_BIG))
            return Document(file, None, lines, tuple(problems), failed=True)
        data = loader.construct_document(node)
    except BadNumber as exc:
        problems = [Problem(file, exc.node.start_mark.line + 1, paths.get(id(exc.node), ""), exc.message)]
        return Document(file, None, {}, tuple(problems), failed=True)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return _failed(file, mark.line + 1 if mark else 1, _syntax_message(exc))
    except yaml.YAMLError as exc:
        position = getattr(exc, "position", 0) or 0
        line = text[:position].count("\n") + 1
        return _failed(file, line, f"invalid YAML: {str(exc).splitlines()[0]}")
    except RecursionError:
        return _failed(file, 1, "invalid YAML: nested too deeply; flatten the structure")
    finally:
        if loader is not None:
            loader.dispose()
    return Document(file, data, lines, tuple(problems))


_TOO_BIG = (
    f"the document expands to more than {MAX_VALUES} values through YAML aliases (*name): "
    "write the values out instead of nesting aliases"
)


def _failed(file: str, line: int, message: str) -> Document:
    return Document(file, None, {}, (Problem(file, line, "", message),), failed=True)


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    parts = [part for part in (exc.context, exc.problem) if part]
    what = ", ".join(parts) or "unreadable"
    advice = "use spaces, not tabs," if "'\\t'" in what else "check indentation, colons and quoting"
    return f"invalid YAML: {what}; {advice} on this line"


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as text and reports bad numbers with a line."""


def _scalar_as_text(loader: yaml.SafeLoader, node: Node) -> Any:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _scalar_as_text)
_Loader.add_constructor("tag:yaml.org,2002:int", checked_number(yaml.SafeLoader.construct_yaml_int))
_Loader.add_constructor("tag:yaml.org,2002:float", checked_number(yaml.SafeLoader.construct_yaml_float))


def _index(file: str, root: Node, paths: dict[int, str]) -> tuple[dict[tuple[str, ...], int], list[Problem]]:
    """Line of every key and list item, and the problems of keys (duplicates, merge keys,
    booleans); each node is walked once, so aliased values keep the lines (and, in
    ``paths``, the rendered key path by node id) of their first occurrence."""
    lines: dict[tuple[str, ...], int] = {(): root.start_mark.line + 1}
    problems: list[Problem] = []
    stack: list[tuple[tuple[str, ...], str, Node]] = [((), "", root)]
    seen: set[int] = set()
    while stack:
        path, shown, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        paths[id(node)] = shown
        if isinstance(node, MappingNode):
            children = [
                (child_path, render_path((shown, child_path[-1]) if shown else child_path[-1:]), child, line)
                for child_path, child, line in _mapping_children(file, path, node, problems)
            ]
        elif isinstance(node, SequenceNode):
            children = [
                ((*path, str(i)), f"{shown}[{i}]", item, item.start_mark.line + 1)
                for i, item in enumerate(node.value)
            ]
        else:
            continue
        for child_path, child_shown, child, line in children:
            lines[child_path] = line
            stack.append((child_path, child_shown, child))
    return lines, problems


def _mapping_children(
    file: str, path: tuple[str, ...], node: MappingNode, problems: list[Problem]
) -> list[tuple[tuple[str, ...], Node, int]]:
    """(path, value node, key line) per scalar key; duplicate keys, a second merge key
    and boolean keys become problems.

    The key's line is used (not the value's) so that an error about a key or its value
    points at the line where the key is written. Merge keys (``<<``) are skipped. A key
    YAML 1.1 reads as a boolean (``on:``, ``yes:``, ``off:``) is reported at its own line
    and path, then kept as the text it is written as, so validation does not report it
    again at the mapping's line as a key that is not text.
    """
    first: dict[tuple[str, str], int] = {}
    merged_at = 0
    children: list[tuple[tuple[str, ...], Node, int]] = []
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.tag == _MERGE:
            line = key.start_mark.line + 1
            if merged_at:
                problems.append(Problem(file, line, render_path((*path, "<<")), _merge_message(merged_at)))
            merged_at = merged_at or line
            continue
        if not isinstance(key, ScalarNode):
            continue
        line = key.start_mark.line + 1
        if key.tag == _BOOL:
            problems.append(Problem(file, line, render_path((*path, key.value)), _bool_key_message(key)))
            key.tag = _STR
        ident = (key.tag, key.value)
        if ident in first:
            message = (
                f"duplicate key (first at line {first[ident]}): YAML keeps only the last one; "
                "remove one of them"
            )
            problems.append(Problem(file, line, render_path((*path, key.value)), message))
        first.setdefault(ident, line)
        children.append(((*path, key.value), value, line))
    return children


_MERGE = "tag:yaml.org,2002:merge"
_BOOL = "tag:yaml.org,2002:bool"
_STR = "tag:yaml.org,2002:str"


def _merge_message(first: int) -> str:
    return (
        f"a second merge key (<<) in this mapping (the first is at line {first}): YAML allows one; "
        "merge several mappings with one key, e.g. `<<: [*first, *second]`"
    )


def _bool_key_message(key: ScalarNode) -> str:
    word = str(key.value)
    meaning = "true" if word.lower() in ("yes", "on", "true", "y") else "false"
    return (
        f"the key {word} is read by YAML 1.1 as the boolean {meaning}, not as the word: "
        f'quote it ("{word}") if you mean the word'
    )


def _expanded_size(node: Node, memo: dict[int, int], active: set[int] | None = None) -> int:
    """How many values ``node`` stands for once aliases are expanded, capped at
    ``MAX_VALUES + 1``; a node that contains itself counts its inner use once."""
    active = set() if active is None else active
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active or not isinstance(node, MappingNode | SequenceNode):
        return 1
    active.add(key)
    children: list[Node] = (
        [n for pair in node.value for n in pair] if isinstance(node, MappingNode) else list(node.value)
    )
    total = 1
    for child in children:
        total = min(MAX_VALUES + 1, total + _expanded_size(child, memo, active))
    active.discard(key)
    memo[key] = total
    return total
