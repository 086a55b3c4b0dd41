"""Checks of the references between names, across ``pipeline.yaml`` and service files.

They read the raw YAML data (not the validated models) so that a broken reference is
reported even when the same file has other problems. Every check ignores values of the
wrong type: those are reported by model validation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.config.fields import NAME_PATTERN
from pipeline.config.source import Document, Problem

__all__ = ["local_environments", "organisations", "project_references", "route_clashes", "service_references"]


def organisations(project: Document) -> set[str] | None:
    """Organisation names in ``pipeline.yaml``, or None when they cannot be known."""
    orgs = _mapping(project.data).get("organisations")
    return {key for key in orgs if isinstance(key, str)} if isinstance(orgs, dict) else None


def local_environments(project: Document) -> list[str]:
    """Names of the environments on the local platform."""
    envs = _mapping(_mapping(project.data).get("environments"))
    return sorted(str(name) for name, env in envs.items() if _mapping(env).get("platform") == "local")


def project_references(doc: Document) -> list[Problem]:
    """Owners and approvals name organisations; ``requires.passed`` names other
    environments without cycles; local environments do not share a port."""
    envs = _mapping(_mapping(doc.data).get("environments"))
    orgs = organisations(doc)
    problems: list[Problem] = []
    for name, env in envs.items():
        problems += _environment_references(doc, str(name), _mapping(env), orgs, set(map(str, envs)))
    return problems + _cycles(doc, envs) + _port_clashes(doc, envs)


def service_references(
    doc: Document, folder: str, orgs: set[str] | None, local_envs: list[str]
) -> list[Problem]:
    """The name matches the folder, the owner is an organisation, and an ECS service that
    local environments run says how to start it."""
    data = _mapping(doc.data)
    problems: list[Problem] = []
    if not re.fullmatch(NAME_PATTERN, folder):
        problems.append(
            doc.problem(
                (),
                f"folder name '{folder}' is not a valid service name: use 1-30 "
                "lowercase letters, digits and '-', starting with a letter",
            )
        )
    name = data.get("name")
    if isinstance(name, str) and name != folder:
        problems.append(
            doc.problem(
                ("name",),
                f"name '{name}' does not match its folder services/{folder}: rename one so that they agree",
            )
        )
    problems += _organisation(doc, ("owner",), data.get("owner"), orgs)
    if data.get("kind") == "ecs" and "local" not in data and local_envs and doc.data is not None:
        problems.append(
            doc.problem(
                ("local",),
                f"environments {', '.join(local_envs)} run on the local "
                "platform, which needs `local: {command: ...}` to start this service: add it",
            )
        )
    return problems


def route_clashes(docs: Iterable[Document]) -> list[Problem]:
    """Route priorities and path patterns must be unique among services (one listener)."""
    problems: list[Problem] = []
    owners: dict[tuple[str, object], str] = {}
    for doc in docs:
        data = _mapping(doc.data)
        for kind in ("ecs", "lambda"):
            route = _mapping(_mapping(data.get(kind)).get("route"))
            for key in ("path", "priority"):
                value = route.get(key)
                if not isinstance(value, int | str) or isinstance(value, bool):
                    continue
                other = owners.setdefault((key, value), doc.file)
                if other != doc.file:
                    problems.append(
                        doc.problem(
                            (kind, "route", key),
                            f"route {key} {value!r} is also used by "
                            f"{other}: each service needs its own; pick another",
                        )
                    )
    return problems


def _environment_references(
    doc: Document, name: str, env: Mapping[Any, Any], orgs: set[str] | None, envs: set[str]
) -> list[Problem]:
    base = ("environments", name)
    requires = _mapping(env.get("requires"))
    problems = _organisation(doc, (*base, "owner"), env.get("owner"), orgs)
    problems += _organisation(doc, (*base, "requires", "approval"), requires.get("approval"), orgs)
    passed = requires.get("passed")
    for i, required in enumerate(passed if isinstance(passed, list) else []):
        loc = (*base, "requires", "passed", i)
        if required == name:
            problems.append(
                doc.problem(
                    loc,
                    f"environment {name} requires itself, so no release could ever "
                    "reach it: remove it from its own requires.passed",
                )
            )
        elif isinstance(required, str) and required not in envs:
            problems.append(
                doc.problem(
                    loc,
                    f"unknown environment '{required}': environments are "
                    f"{', '.join(sorted(envs))}; use one of them",
                )
            )
    return problems


def _organisation(
    doc: Document, loc: tuple[str | int, ...], value: object, orgs: set[str] | None
) -> list[Problem]:
    if orgs is None or not isinstance(value, str) or value in orgs:
        return []
    known = ", ".join(sorted(orgs)) or "none"
    return [
        doc.problem(
            loc,
            f"unknown organisation '{value}': organisations in pipeline.yaml are {known}; "
            "use one of them or add it under `organisations:`",
        )
    ]


def _cycles(doc: Document, envs: Mapping[Any, Any]) -> list[Problem]:
    """One problem per group of environments that require each other in a cycle."""
    names = {str(name) for name in envs}
    graph = {str(name): _requirements(env, str(name)) & names for name, env in envs.items()}
    reach = {name: _reachable(graph, name) for name in graph}
    problems: list[Problem] = []
    reported: set[str] = set()
    for name in sorted(graph):
        if name in reported or name not in reach[name]:
            continue
        members = sorted(other for other in reach[name] if name in reach[other])
        reported.update(members)
        problems.append(
            doc.problem(
                ("environments", name, "requires", "passed"),
                f"requires.passed forms a cycle between {', '.join(members)}: no release "
                "could ever reach them; remove one of the requirements",
            )
        )
    return problems


def _requirements(env: object, name: str) -> set[str]:
    passed = _mapping(_mapping(env).get("requires")).get("passed")
    return {p for p in passed if isinstance(p, str) and p != name} if isinstance(passed, list) else set()


def _reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += graph.get(name, ())
    return seen


def _port_clashes(doc: Document, envs: Mapping[Any, Any]) -> list[Problem]:
    problems: list[Problem] = []
    users: dict[int, str] = {}
    for name, env in envs.items():
        port = _mapping(_mapping(env).get("local")).get("port")
        if not isinstance(port, int) or isinstance(port, bool):
            continue
        other = users.setdefault(port, str(name))
        if other != str(name):
            problems.append(
                doc.problem(
                    ("environments", name, "local", "port"),
                    f"port {port} is also used by "
                    f"environment {other}: give each local environment its own port",
                )
            )
    return problems


def _mapping(value: object) -> Mapping[Any, Any]:
    return value if isinstance(value, dict) else {}
