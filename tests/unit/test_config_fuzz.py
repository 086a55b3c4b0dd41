"""Property: for any file content, ``load_project`` returns a Project or raises ConfigError.

Documents come from three sources: arbitrary YAML values (recursive dicts, lists and
scalars, with config keys mixed in), mutations of the example project in the repo
(keys deleted, values replaced by random scalars, random keys inserted), and raw text or
bytes (YAML syntax fragments, binary junk). Any exception other than ``ConfigError``
fails the test, and every reported problem must start with ``file:line:``.
"""

from __future__ import annotations

import copy
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import load_project, strategy_for
from pipeline.core.errors import ConfigError
from tests.unit.support.project import REPO_ROOT

FILES = (
    "pipeline.yaml",
    "services/orders/service.yaml",
    "services/catalog/service.yaml",
    "services/notify/service.yaml",
)
ORIGINAL = {f: (REPO_ROOT / f).read_bytes() for f in FILES}
EXAMPLE = {f: yaml.safe_load(text) for f, text in ORIGINAL.items()}

CONFIG_WORDS = sorted(
    {
        "project",
        "organisations",
        "members",
        "environments",
        "platform",
        "local",
        "aws",
        "owner",
        "requires",
        "passed",
        "approval",
        "port",
        "name",
        "kind",
        "ecs",
        "lambda",
        "deploy",
        "steps",
        "strategy",
        "canary",
        "linear",
        "blue-green",
        "set_weight",
        "pause",
        "analyze",
        "load",
        "test",
        "approve",
        "route",
        "priority",
        "path",
        "timeouts",
        "ready",
        "analysis",
        "checks",
        "metric",
        "max",
        "dev",
        "ops",
        "orders",
        "30s",
        "5m",
        "1h30m",
        "500ms",
        "error_rate",
        "p95_ms",
    }
)
PROBLEM = re.compile(r"^[^:\n]+:\d+: ")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(CONFIG_WORDS),
)
keys = st.one_of(st.sampled_from(CONFIG_WORDS), st.text(max_size=10), st.integers(-5, 5), st.booleans())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=25,
)

YAML_FRAGMENTS = [
    "a: ",
    "- ",
    "\n",
    "  ",
    "\t",
    "{",
    "}",
    "[",
    "]",
    ", ",
    ": ",
    "? ",
    "&x ",
    "*x",
    "!!binary ",
    "!!str ",
    "!tag ",
    "---\n",
    "...\n",
    "'",
    '"',
    "#",
    "|\n",
    ">\n",
    "<<: ",
    "project: shop\n",
    "steps:\n  - pause: ",
    "%YAML 1.1\n",
    "\x00",
    "\ufeff",
    "é",
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


def _mutate(doc: Any, path: tuple[Any, ...], op: str, value: Any, key: Any) -> Any:
    if not path:
        return value if op != "insert" or not isinstance(doc, dict) else {**doc, key: value}
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "replace":
        parent[last] = value
    elif isinstance(parent[last], dict):
        parent[last][key] = value
    return doc


@st.composite
def mutated_examples(draw: st.DrawFn) -> tuple[str, Any]:
    file = draw(st.sampled_from(FILES))
    doc = copy.deepcopy(EXAMPLE[file])
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(_paths(doc))))
        op = draw(st.sampled_from(["delete", "replace", "insert"]))
        doc = _mutate(doc, path, op, draw(values), draw(keys))
    return file, doc


def _dump(doc: Any) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode("utf-8")


documents = st.one_of(
    mutated_examples().map(lambda pair: (pair[0], _dump(pair[1]))),
    st.tuples(st.sampled_from(FILES), values.map(_dump)),
    st.tuples(
        st.sampled_from(FILES),
        st.lists(st.sampled_from(YAML_FRAGMENTS), max_size=20).map(
            lambda parts: "".join(parts).encode("utf-8")
        ),
    ),
    st.tuples(st.sampled_from(FILES), st.binary(max_size=64)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(documents, min_size=1, max_size=3))
def test_load_project_returns_a_project_or_raises_config_error(changes: list[tuple[str, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for file, content in [*ORIGINAL.items(), *changes]:
            (root / file).parent.mkdir(parents=True, exist_ok=True)
            (root / file).write_bytes(content)
        try:
            project = load_project(root)
        except ConfigError as exc:
            assert exc.problems
            assert all(PROBLEM.match(problem) for problem in exc.problems), exc.problems
        else:
            assert set(project.services) == {"catalog", "notify", "orders"}
            for name in project.services:
                assert strategy_for(project, name).steps
