"""What services call: ``calls: [svc, ...]`` checked across service files, and the warm-up order.

``call_references`` reads the raw YAML data (like ``references``) so that a broken name is
reported with its file:line even when the file has other problems: every name must be a
service of the project, a service does not call itself, and calls form no cycle (a cycle
has no deepest dependency to warm first).

``warm_order`` is the order a deployment warms a service's dependency chain in: every
service reachable through ``calls``, deepest dependency first, each once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pipeline.config.source import Document, Problem

__all__ = ["call_references", "warm_order"]


def call_references(docs: Iterable[tuple[str, Document]]) -> list[Problem]:
    """Problems of the ``calls`` lists of the service documents, given as (folder, document)."""
    pairs = list(docs)
    names = {folder for folder, _ in pairs}
    graph: dict[str, list[str]] = {}
    problems: list[Problem] = []
    for folder, doc in pairs:
        calls = _calls(doc.data)
        graph[folder] = []
        for i, callee in enumerate(calls):
            if not isinstance(callee, str):
                continue  # a wrong type is reported by model validation
            if callee == folder:
                problems.append(doc.problem(("calls", i), f"service {folder} calls itself: remove it from "
                                                          "its own `calls`"))
            elif callee not in names:
                known = ", ".join(sorted(names - {folder})) or "none"
                why = f"unknown service '{callee}': services are {known}; use one of them or remove it"
                problems.append(doc.problem(("calls", i), why))
            else:
                graph[folder].append(callee)
    by_folder = dict(pairs)
    for cycle in _cycles(graph):
        doc = by_folder[cycle[0]]
        index = _calls(doc.data).index(cycle[1])
        path = " -> ".join([*cycle, cycle[0]])
        problems.append(doc.problem(("calls", index), f"calls form a cycle ({path}): no dependency can be "
                                                      "warmed first; remove one of the calls"))
    return problems


def warm_order(service: str, calls_of: Callable[[str], Sequence[str]]) -> tuple[str, ...]:
    """Services ``service`` reaches through ``calls_of``, deepest first, each once (not itself).

    A dependency comes after everything it calls. Cycles (refused by validation) are cut.
    """
    order: list[str] = []
    visiting: set[str] = {service}

    def visit(name: str) -> None:
        for callee in calls_of(name):
            if callee in visiting or callee in order:
                continue
            visiting.add(callee)
            visit(callee)
            order.append(callee)

    visit(service)
    return tuple(order)


def _calls(data: object) -> list[Any]:
    calls = data.get("calls") if isinstance(data, Mapping) else None
    return calls if isinstance(calls, list) else []


def _cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """One cycle per strongly connected group (as a path starting at its smallest name)."""
    cycles: list[list[str]] = []
    seen: set[str] = set()
    for start in sorted(graph):
        if start in seen:
            continue
        path = _path_back(graph, start)
        if path is not None:
            seen.update(path)
            cycles.append(path)
    return cycles


def _path_back(graph: Mapping[str, list[str]], start: str) -> list[str] | None:
    """A path start -> ... -> (back to start), or None (breadth first: the shortest one)."""
    parents: dict[str, str] = {}
    todo = [start]
    while todo:
        name = todo.pop(0)
        for callee in graph.get(name, []):
            if callee == start:
                path = [name]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return path[::-1]
            if callee not in parents:
                parents[callee] = name
                todo.append(callee)
    return None
