"""The deployment report from a deployment stepped through the engine with the fakes: charts
built from the metrics and the history, waterfalls from traces, and data that cannot inject
markup."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pipeline.core.model import Measurement, Slot
from pipeline.core.ports import Record
from pipeline.operations import deploy
from pipeline.report import page
from pipeline.report.build import report_of
from pipeline.report.data import slowest
from pipeline.report.svg import Axis, Line, line_chart
from pipeline.testing import FakeTraces, release
from tests.unit.support.engine import CANARY, REF, World, stable_world
from tests.unit.support.fake_cli import code, install

EVIL = '<script>alert("x")</script>'


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    start: float
    end: float
    status: str = "ok"
    attributes: dict[str, Any] = field(default_factory=dict)


class Elements(HTMLParser):
    """Every element's tag and attributes, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def parsed(text: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(text)
    return parser.found


def chart(text: str, cid: str) -> str:
    found = re.search(rf'<svg id="{cid}".*?</svg>', text, re.S)
    assert found is not None, cid
    return found.group(0)


def deployed(traces: FakeTraces | None = None) -> tuple[World, str]:
    world, _ = stable_world(CANARY)
    world.platform.traces = traces
    slow = {Slot.BLUE: 40.0, Slot.GREEN: 90.0}
    world.platform.metrics.source = lambda slot, since, until: Measurement(
        requests=int(10 * (until - since)), errors=1 if slot is Slot.GREEN else 0, p95_ms=slow[slot]
    )
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    return world, page.render(report_of(world.ctx(), state))


def test_the_report_charts_each_slots_rate_errors_and_p95_from_the_metrics() -> None:
    _, text = deployed()
    for cid in page.CHART_IDS:
        assert f'id="{cid}"' in text
    p95 = chart(text, "chart-p95")
    assert "blue: 40 ms" in p95 and "green: 90 ms" in p95  # each slot's own figures, per window
    rate = chart(text, "chart-rate")
    assert rate.count('class="point"') >= 4 and "green: 10/s" in rate


def test_weights_and_verdicts_come_from_the_deployments_history() -> None:
    world, text = deployed()
    weights = [r.data["weights"] for r in world.store.history(REF) if "weights" in r.data]
    assert {"blue": 100, "green": 0} in weights and {"blue": 0, "green": 100} in weights
    steps = chart(text, "chart-weights")
    assert "green weight: 100%" in steps and "blue weight: 100%" in steps
    verdicts = [r for r in world.store.history(REF) if "verdict" in r.data]
    assert verdicts and all(r.data["verdict"] == "successful" for r in verdicts)
    marks = chart(text, "chart-verdicts")
    latest = [r for r in verdicts if r.deployment == verdicts[-1].deployment]
    assert marks.count('class="point"') >= len(latest)
    assert "successful: analysis successful" in marks


def test_without_traces_the_section_says_so_and_with_traces_it_draws_the_slowest() -> None:
    _, text = deployed(None)
    assert "no traces recorded" in text and "waterfall-" not in text
    traces = FakeTraces()
    fast = [Span("t1", "a", None, "GET /orders", "router", 100.0, 100.01)]
    slow = [Span("t2", "r", None, "GET /orders", "router", 100.0, 100.5),
            Span("t2", "s", "r", "GET /orders", "orders", 100.01, 100.49),
            Span("t2", "d", "s", "db.query", "orders", 100.1, 100.4, status="error")]
    traces.per_slot = {Slot.GREEN: [fast, slow]}
    _, text = deployed(traces)
    fall = chart(text, "waterfall-green")
    assert "trace t2 (500.0 ms)" in fall and fall.count("<rect class=\"point\"") == 3
    assert "orders: db.query: 300.0 ms" in fall and "#c62828" in fall  # the failed span in red
    assert "no traces recorded for this slot" in text  # blue had none


def test_slowest_nests_spans_by_parent() -> None:
    spans = [Span("t", "c", "b", "child", "catalog", 1.2, 1.3),
             Span("t", "a", None, "root", "router", 1.0, 2.0),
             Span("t", "b", "a", "mid", "orders", 1.1, 1.9)]
    worst = slowest([spans])
    assert worst is not None
    nested = [(b.label, b.depth) for b in worst.bars]
    assert nested == [("router: root", 0), ("orders: mid", 1), ("catalog: child", 2)]


def test_data_cannot_inject_markup() -> None:
    traces = FakeTraces()
    traces.per_slot = {Slot.GREEN: [[Span("t", "a", None, EVIL, EVIL, 1.0, 2.0)]]}
    world, _ = stable_world(CANARY)
    world.platform.traces = traces
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    world.store.records.append(Record(ts=state.updated_at, ref=REF, deployment=state.id, actor=EVIL,
                                      action=EVIL, detail=EVIL, data={"verdict": EVIL, "weights": {}}))
    text = page.render(report_of(world.ctx(), state))
    assert "<script" not in text
    assert text.count("&lt;script&gt;") >= 4
    assert all(tag != "script" for tag, _ in parsed(text))
    svg = line_chart('x"><script>', EVIL, Axis(0, 10), [Line(EVIL, 'red"/><script>', [(1.0, 2.0)])])
    assert "<script" not in svg
    allowed = {"svg", "rect", "text", "g", "polyline", "circle", "title", "p", "span"}
    assert {tag for tag, _ in parsed(svg)} <= allowed


def test_a_metrics_outage_leaves_the_charts_empty_with_the_reason() -> None:
    world, _ = stable_world(CANARY)
    state = deploy(world.ctx(), REF, release("v2"), CANARY)
    world.platform.metrics.fail = "throttled"
    text = page.render(report_of(world.ctx(), state))
    assert "metrics unavailable: metrics unavailable: throttled" in text
    assert 'id="chart-rate"' in text and 'class="point"' not in chart(text, "chart-rate")



def test_deploy_and_promote_write_the_report_whatever_the_outcome(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fakes = install(monkeypatch)
    first = tmp_path / "v1.html"
    exit_code, _out, err = code("deploy", "orders", "--env", "dev", "--ref", "v1", "--report", str(first))
    assert exit_code == 0 and f"report: {first}" in err
    assert 'id="chart-weights"' in first.read_text()
    fakes.fakes.metrics.per_slot[Slot.GREEN] = Measurement(100, 60, 10.0)  # v2 fails its analysis
    failed = tmp_path / "reports" / "v2.html"
    exit_code, _out, err = code("deploy", "orders", "--env", "dev", "--ref", "v2", "--report", str(failed))
    assert exit_code != 0 and failed.is_file()
    text = failed.read_text()
    marks = chart(text, "chart-verdicts")
    assert "rolled_back" in text
    assert "failed: rolling back to v1" in marks and "analysis failed: error_rate" in marks
    assert marks.count('class="point"') == 1  # one analysis, one mark (its notes joined)
    fakes.fakes.metrics.per_slot.clear()
    promoted = tmp_path / "staging.html"
    exit_code, _out, err = code("promote", "orders", "--from", "dev", "--to", "staging", "--yes",
                                "--report", str(promoted))
    assert exit_code == 0, err
    assert "orders@staging" in promoted.read_text()


def test_a_report_that_cannot_be_written_is_said_and_the_deployment_still_succeeds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install(monkeypatch)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder\n")
    target = str(blocked / "r.html")
    args = ("deploy", "orders", "--env", "dev", "--ref", "v1", "--report", target)
    exit_code, _out, err = code(*args, COLUMNS="300")
    assert exit_code == 0 and f"report not written to {blocked / 'r.html'}" in err and "Traceback" not in err
    assert "succeeded" in err
