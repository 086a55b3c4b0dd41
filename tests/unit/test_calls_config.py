"""``calls:`` and ``lambda.keep_warm``: names checked across service files with file:line,
cycles refused, and the warm-up order (deepest dependency first)."""

from __future__ import annotations

import pytest

from pipeline.config import load_project
from pipeline.config.calls import warm_order
from pipeline.core.errors import ConfigError
from tests.unit.support.project import WriteProject

PIPELINE = """
    project: shop
    organisations: {dev: {members: [alice]}}
    environments:
      dev: {platform: local, owner: dev, local: {port: 8100}}
    """


def function(name: str, priority: int, extra: str = "", keep: str = "") -> str:
    return f"""
    name: {name}
    kind: lambda
    owner: dev
    paths: [services/{name}/**]
    build: {{context: services/{name}}}
    lambda:
      handler: handler.handle
      route: {{path: /{name}*, priority: {priority}}}
      {keep}
    {extra}"""


def problems(write_project: WriteProject, services: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_project(write_project(PIPELINE, services))
    return info.value.problems


def test_calls_and_keep_warm_load_and_give_the_warm_order(write_project: WriteProject) -> None:
    keep = "keep_warm: {every: 5m, concurrency: 2}"
    root = write_project(PIPELINE, {
        "front": function("front", 10, "calls: [mid, back]"),
        "mid": function("mid", 20, "calls: [back]", keep),
        "back": function("back", 30),
    })
    project = load_project(root)
    mid = project.service("mid").lambda_
    assert mid is not None and mid.keep_warm is not None
    assert (mid.keep_warm.every, mid.keep_warm.concurrency) == (300.0, 2)
    assert warm_order("front", lambda name: project.service(name).calls) == ("back", "mid")


def test_unknown_and_self_calls_are_reported_with_file_and_line(write_project: WriteProject) -> None:
    found = problems(write_project, {
        "front": function("front", 10, "calls: [back, shipping]"),
        "back": function("back", 30, "calls: [back]"),
    })
    assert found == [
        "services/back/service.yaml:10: calls[0]: service back calls itself: remove it from its own `calls`",
        "services/front/service.yaml:10: calls[1]: unknown service 'shipping': services are back; "
        "use one of them or remove it",
    ]


def test_a_cycle_of_calls_is_refused(write_project: WriteProject) -> None:
    found = problems(write_project, {
        "a": function("a", 10, "calls: [b]"),
        "b": function("b", 20, "calls: [c]"),
        "c": function("c", 30, "calls: [a]"),
    })
    assert found == [
        "services/a/service.yaml:10: calls[0]: calls form a cycle (a -> b -> c -> a): no dependency can "
        "be warmed first; remove one of the calls",
    ]


def test_keep_warm_needs_whole_minutes_and_at_most_five_pings(write_project: WriteProject) -> None:
    keep = "keep_warm: {every: 90s, concurrency: 6}"
    found = problems(write_project, {"a": function("a", 10, keep=keep)})
    assert any("lambda.keep_warm.concurrency" in p and "5" in p for p in found), found
    ok_count = keep.replace("6", "2")
    found = problems(write_project, {"a": function("a", 10, keep=ok_count)})
    assert len(found) == 1 and "whole minutes" in found[0] and "keep_warm.every" in found[0], found
