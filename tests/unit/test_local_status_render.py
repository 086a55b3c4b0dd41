"""``pipeline local status``'s text: the router spans the plane still has to store."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.cli.local import render_status


def _status(router_spans: dict[str, int] | None) -> dict[str, Any]:
    return {"id": "abc", "pid": 7, "environments": {}, "router_spans": router_spans}


def test_spans_waiting_or_dropped_are_shown() -> None:
    lines = render_status(_status({"written": 10, "queued": 40_000, "dropped": 3, "held": 9}))
    assert lines[-1] == ("router spans: 10 stored, 40000 waiting (stored once traffic is quiet), "
                         "3 dropped")


@pytest.mark.parametrize("spans", [None, {"written": 10, "queued": 0, "dropped": 0, "held": 9}])
def test_nothing_is_said_when_every_span_is_stored_or_none_are_recorded(spans: dict[str, int] | None) -> None:
    assert not any(line.startswith("router spans") for line in render_status(_status(spans)))
