"""Router spans held back while the router is busy, and readers that still see them.

A real plane, its router in front of the project's orders replicas, traffic from a few
threads. ``PIPELINE_SPANS_QUIET=0`` makes any traffic count as busy, so the span writer holds
every span for as long as requests keep coming (the default holds them above 1,000 spans a
second). A reader (``LocalTraces``, which a canary's per-hop analysis uses, and
``pipeline trace``) asks the plane to store what it holds, and finds a request sent during
the traffic while the traffic goes on; once the traffic stops, the rest is stored. (A bad
``PIPELINE_SPANS_QUIET`` is refused with the plane's other settings, in test_router_abuse.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from pipeline.cli.main import main
from pipeline.core.model import Slot, Weights
from pipeline.local.plane.lifecycle import PlaneInfo
from pipeline.local.plane.otlp import SPANS_QUIET_ENV
from pipeline.local.spans import SpanStore
from pipeline.local.traces import LocalTraces
from tests.local.support.plane import Adapters, Load, Project, get, running_plane, wait_until

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SHOWN = "5c0a3e1b2d4f60718293a4b5c6d7e8f9"


@pytest.fixture
def plane(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlaneInfo]:
    monkeypatch.setenv(SPANS_QUIET_ENV, "0")  # any traffic is busy: spans wait while it lasts
    with running_plane(project) as info:
        yield info


def _router_spans(adapters: Adapters) -> dict[str, int]:
    return dict(adapters.client.call("GET", "/v1/status")["router_spans"])


def test_a_reader_sees_spans_held_back_during_traffic_and_the_rest_are_stored_after(
        project: Project, adapters: Adapters, capsys: pytest.CaptureFixture[str]) -> None:
    release = adapters.registry.resolve("orders", "HEAD")
    adapters.compute.provision(Slot.BLUE, release)
    wait_until(lambda: adapters.compute.health(Slot.BLUE, release).ready, 30, "blue ready")
    adapters.router.set_weights(Weights(100, 0))
    since = time.time()
    load = Load(adapters.url + "/orders", workers=3).start()
    try:
        wait_until(lambda: load.total > 50, 20, "traffic through the router")
        traceparent = f"00-{TRACE}-00f067aa0ba902b7-01"
        assert get(adapters.url + "/orders", {"traceparent": traceparent})[0] == 200
        wait_until(lambda: _router_spans(adapters)["held"] > 0, 10, "the writer holding spans back")
        # still busy: what the reader gets, it got by asking the plane to store its spans
        traces = LocalTraces(project.state_dir, "dev", "orders").traces(since, time.time() + 1)
        assert TRACE in {span.trace_id for trace in traces for span in trace}
        stats = _router_spans(adapters)
        assert stats["written"] > 50 and stats["dropped"] == 0
        # `pipeline trace show` asks for them too
        assert get(adapters.url + "/orders", {"traceparent": f"00-{SHOWN}-00f067aa0ba902b7-01"})[0] == 200
        assert main(["--root", str(project.root), "trace", "show", SHOWN, "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert [span["service"] for span in shown["spans"]] == ["router"]
    finally:
        load.stop()
    assert not load.failures
    wait_until(lambda: _router_spans(adapters)["queued"] == 0, 10, "the held spans stored once quiet")
    stats = _router_spans(adapters)
    assert stats["dropped"] == 0
    assert SpanStore.of(project.state_dir).count() >= stats["written"] >= load.total + 1

