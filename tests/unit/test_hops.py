"""Per-hop figures from traces: self time, shares of the p95 time, hops that grew, the
load stage's "where the time goes" report, per-hop analysis checks and their config."""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import load_project
from pipeline.config.windows import window_warnings
from pipeline.core.analysis import AnalysisSpec, Check, Outcome, assess
from pipeline.core.errors import ConfigError
from pipeline.core.hops import HopLimits, compare, end_to_end_ms, hop_of, percentile, profile, self_ms
from pipeline.core.model import Measurement, Release, Slot
from pipeline.core.plan import Strategy
from pipeline.core.state import Timeouts
from pipeline.core.steps import Analyze, SetWeight, canary
from pipeline.loadtest.hops import hop_report, markdown_lines
from pipeline.local.spans import SpanRecord, SpanStore
from pipeline.local.traces import LocalTraces
from pipeline.operations import deploy
from pipeline.testing import FakeTraces, release
from tests.unit.support.engine import REF, World, stable_world
from tests.unit.support.project import WriteProject

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class FakeSpan:
    """The shape of the span store's ``SpanRecord``; times in epoch seconds."""

    span_id: str
    parent_id: str | None
    name: str
    service: str
    start: float
    end: float
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"


def _span(parent: FakeSpan | None, service: str, name: str, start_ms: float, end_ms: float,
          **attributes: Any) -> FakeSpan:
    return FakeSpan(f"{next(_ids):016x}", parent.span_id if parent else None, name, service,
                    start_ms / 1000, end_ms / 1000, dict(attributes))


def quote_trace(catalog_release: str, catalog_db_ms: float, orders_db_ms: float = 5.0,
                error: bool = False) -> list[FakeSpan]:
    """router -> orders (db, call) -> router -> catalog (db), like the example services."""
    t = 0.0
    end = 2 + orders_db_ms + 1 + (2 + catalog_db_ms + 1) + 2 + 1
    router = _span(None, "router", "GET /orders*", t, end, **{
        "pipeline.service": "orders", "pipeline.slot": "blue", "pipeline.release": "o1"})
    orders = _span(router, "orders", "GET /orders/quote", 1, end - 1, **{"pipeline.release": "o1"})
    orders_db = _span(orders, "orders", "db.query", 2, 2 + orders_db_ms)
    call_start = 3 + orders_db_ms
    call_end = call_start + 2 + catalog_db_ms + 1
    call = _span(orders, "orders", "call catalog", call_start, call_end, **{"peer.service": "catalog"})
    slot = "green" if catalog_release == "c2" else "blue"
    routed = _span(call, "router", "GET /catalog*", call_start + 0.5, call_end - 0.5, **{
        "pipeline.service": "catalog", "pipeline.slot": slot, "pipeline.release": catalog_release,
        "http.response.status_code": 500 if error else 200})
    catalog = _span(routed, "catalog", "GET /catalog/{id}", call_start + 1, call_end - 1,
                    **{"pipeline.release": catalog_release})
    catalog_db = _span(catalog, "catalog", "db.query", call_start + 1.5, call_start + 1.5 + catalog_db_ms)
    return [router, orders, orders_db, call, routed, catalog, catalog_db]


def test_self_time_is_the_duration_minus_the_union_of_children_clipped_to_the_span() -> None:
    parent = _span(None, "a", "work", 0, 100)
    children = [_span(parent, "a", "x", 10, 30), _span(parent, "a", "y", 20, 40),  # overlap: 10..40
                _span(parent, "a", "z", 90, 130)]  # runs past the parent: 90..100 counts
    assert self_ms(parent, children) == pytest.approx(100 - 30 - 10)
    assert self_ms(parent, []) == pytest.approx(100)


def test_hops_are_named_by_service_and_span_with_calls_and_routes_as_arrows() -> None:
    names = {hop_of(s) for s in quote_trace("c1", 10)}
    assert names == {"router -> orders", "orders GET /orders/quote", "orders db.query", "orders -> catalog",
                     "router -> catalog", "catalog GET /catalog/{id}", "catalog db.query"}


def test_self_times_of_a_sequential_trace_add_up_to_its_end_to_end_time() -> None:
    trace = quote_trace("c1", 10)
    by_parent: dict[str, list[FakeSpan]] = {}
    for s in trace:
        by_parent.setdefault(s.parent_id or "", []).append(s)
    total = sum(self_ms(s, by_parent.get(s.span_id, [])) for s in trace)
    assert total == pytest.approx(end_to_end_ms(trace))


def test_nearest_rank_percentile() -> None:
    assert percentile(list(range(1, 101))) == 95
    assert percentile([7.0]) == 7.0
    assert percentile([]) == 0.0


def test_share_of_the_p95_time_goes_to_the_slow_database_call() -> None:
    slow = profile([quote_trace("c2", 300) for _ in range(20)])
    db = slow.hop("catalog db.query")
    assert db is not None and db.p95_ms == pytest.approx(300) and db.self_p95_ms == pytest.approx(300)
    assert slow.hops[0].hop == "catalog db.query"  # largest share first
    assert db.share == pytest.approx(300 / slow.p95_ms)
    assert sum(h.share for h in slow.hops) == pytest.approx(1.0)
    call = slow.hop("orders -> catalog")
    assert call is not None and call.p95_ms > 300 and call.self_p95_ms == pytest.approx(1.0)


def test_a_downstream_database_call_that_grew_300_ms_is_the_one_hop_flagged() -> None:
    stable = profile([quote_trace("c1", 5 + i % 3) for i in range(40)])
    canary = profile([quote_trace("c2", 305 + i % 3) for i in range(20)])
    changes = compare(canary, stable)
    flagged = [c for c in changes if c.flagged]
    assert [c.hop for c in flagged] == ["catalog db.query"]
    assert flagged[0].growth_ms == pytest.approx(300)
    own = {c.hop: c for c in changes}
    for hop in ("orders db.query", "orders GET /orders/quote", "orders -> catalog"):
        assert not own[hop].flagged and own[hop].growth_ms == pytest.approx(0)


def test_jitter_below_the_millisecond_floor_is_not_flagged_however_large_the_ratio() -> None:
    stable = profile([quote_trace("c1", 5) for _ in range(10)])
    canary = profile([quote_trace("c2", 40) for _ in range(10)])  # 8x, but only +35 ms
    assert not any(c.flagged for c in compare(canary, stable))
    assert any(c.flagged for c in compare(canary, stable, HopLimits(min_growth_ms=30)))


def test_hop_error_rate_counts_spans_in_error_or_answering_5xx() -> None:
    figures = profile([quote_trace("c1", 5, error=i < 3) for i in range(10)])
    routed = figures.hop("router -> catalog")
    assert routed is not None and routed.error_rate == pytest.approx(0.3)
    assert figures.hop("catalog db.query").error_rate == 0.0  # type: ignore[union-attr]


def test_the_load_report_groups_traces_by_the_release_that_served_them_and_flags_the_grown_hop() -> None:
    traces = [quote_trace("c1", 5) for _ in range(30)] + [quote_trace("c2", 305) for _ in range(12)]
    report = hop_report(traces)
    assert report is not None
    stable, canary = report.groups
    assert (stable.label, stable.stable, stable.profile.traces) == ("catalog c1 (blue)", True, 30)
    assert (canary.label, canary.stable, canary.profile.traces) == ("catalog c2 (green)", False, 12)
    assert [(label, c.hop) for label, c in report.flagged] == [("catalog c2 (green)", "catalog db.query")]
    assert report.headline == "hop grew: catalog db.query +300 ms p95 self time (catalog c2 (green))"
    text = "\n".join(markdown_lines(report))
    assert "#### Where the time goes" in text
    assert "| catalog db.query | 305.0 | 305.0 |" in text and "+300.0 ms self ❗ grew" in text
    assert report.to_dict()["flagged"] == [{"release": "catalog c2 (green)", "hop": "catalog db.query",
                                           "growth_ms": 300.0}]


def test_one_release_only_is_reported_without_comparison() -> None:
    report = hop_report([quote_trace("c1", 5) for _ in range(5)])
    assert report is not None and [g.label for g in report.groups] == ["all traces"]
    assert report.flagged == () and report.headline == ""
    assert hop_report([]) is None


def _measured(hops_of: list[list[FakeSpan]] | None) -> Measurement:
    hops = profile(hops_of).hops if hops_of is not None else None
    return Measurement(requests=100, errors=0, p95_ms=320.0, hops=hops)


HOP_SPEC = AnalysisSpec(checks=(Check("error_rate", 0.01), Check("hop_p95_ms", 200, "catalog db.query"),
                                Check("hop_error_rate", 0.01, "router -> catalog")))


def test_a_per_hop_latency_check_fails_on_the_slow_database_call() -> None:
    verdict = assess(HOP_SPEC, _measured([quote_trace("c2", 305) for _ in range(20)]), None)
    assert verdict.outcome is Outcome.FAILED
    assert verdict.reason.startswith("hop_p95_ms of catalog db.query 305 > 200")
    assert verdict.measured is not None and verdict.measured["hop_p95_ms catalog db.query"] == 305.0


def test_per_hop_checks_pass_when_every_hop_is_within_its_limits() -> None:
    verdict = assess(HOP_SPEC, _measured([quote_trace("c1", 5) for _ in range(20)]), None)
    assert verdict.outcome is Outcome.SUCCESSFUL, verdict.reason


def test_a_per_hop_error_check_fails_on_a_failing_downstream_route() -> None:
    verdict = assess(HOP_SPEC, _measured([quote_trace("c1", 5, error=i % 2 == 0) for i in range(20)]), None)
    assert verdict.outcome is Outcome.FAILED
    assert "hop_error_rate of router -> catalog 0.5 > 0.01" in verdict.reason


def test_per_hop_checks_without_traces_are_inconclusive_saying_why() -> None:
    verdict = assess(HOP_SPEC, _measured(None), None)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert "keeps no traces" in verdict.reason and "not available on AWS yet" in verdict.reason
    missing = assess(AnalysisSpec(checks=(Check("hop_p95_ms", 200, "payments db.query"),)),
                     _measured([quote_trace("c1", 5)] * 20), None)
    assert missing.outcome is Outcome.INCONCLUSIVE
    assert "no spans of hop 'payments db.query'" in missing.reason and "catalog db.query" in missing.reason


PIPELINE = """
    project: shop
    organisations: {dev: {members: [alice]}}
    environments:
      dev: {platform: local, owner: dev, local: {port: 8100}}
    """
CATALOG = """
    name: catalog
    kind: ecs
    owner: dev
    paths: [services/catalog/**]
    build: {context: services/catalog}
    local: {command: python -m app}
    ecs:
      container: catalog
      port: 8080
      route: {path: /catalog*, priority: 10}
    deploy:
      analysis:
        checks:
    """


def _catalog(write_project: WriteProject, checks: str) -> Path:
    indented = textwrap.indent(textwrap.dedent(checks).strip(), " " * 10)
    return write_project(PIPELINE, {"catalog": CATALOG.rstrip(" ") + indented + "\n"})


def test_hop_checks_are_read_from_the_analysis_config(write_project: WriteProject) -> None:
    root = _catalog(write_project, """
        - {metric: hop_p95_ms, hop: "catalog db.query", max: 200}
        - {metric: hop_error_rate, hop: "orders -> catalog", max: 0.01}
        - {metric: error_rate, max: 0.01}
    """)
    spec = load_project(root).service("catalog").deploy.analysis.to_spec()
    assert spec.checks == (Check("hop_p95_ms", 200, "catalog db.query"),
                           Check("hop_error_rate", 0.01, "orders -> catalog"), Check("error_rate", 0.01))


def test_bad_hop_checks_are_reported_with_their_line_and_what_to_do(write_project: WriteProject) -> None:
    root = _catalog(write_project, """
        - {metric: hop_p95_ms, max: 200}
        - {metric: p95_ms, hop: "catalog db.query", max: 200}
        - {metric: hop_error_rate, hop: "catalog db.query", max: 5}
    """)
    with pytest.raises(ConfigError) as info:
        load_project(root)
    text = info.value.render()
    lines = text.splitlines()
    at = "services/catalog/service.yaml:"
    assert any(line.startswith(f"{at}14:") and 'add `hop: "catalog db.query"`' in line for line in lines)
    assert any(line.startswith(f"{at}15:") and "remove hop, or use hop_p95_ms" in line for line in lines)
    assert "hop_error_rate is a fraction of spans, 5 is more than all of them" in text


def test_the_same_hop_checked_twice_is_reported(write_project: WriteProject) -> None:
    root = _catalog(write_project, """
        - {metric: hop_p95_ms, hop: "catalog db.query", max: 100}
        - {metric: hop_p95_ms, hop: "catalog db.query", max: 300}
        - {metric: hop_p95_ms, hop: "orders -> catalog", max: 300}
    """)
    with pytest.raises(ConfigError) as info:
        load_project(root)
    assert "hop_p95_ms of catalog db.query is checked twice" in info.value.render()
    assert "orders -> catalog" not in info.value.render()


# --- the engine reads the new slot's traces for per-hop checks ------------------------------

HOP_CANARY = Strategy(
    steps=canary((SetWeight(20), Analyze())),
    analysis=AnalysisSpec(checks=(Check("error_rate", 0.01), Check("hop_p95_ms", 200, "catalog db.query")),
                          min_requests=10, inconclusive_limit=0),
    timeouts=Timeouts(ready=60, verify=10, stage=60, hold=600, poll=1),
)


def _catalog_world() -> tuple[World, Release]:
    world, _ = stable_world(HOP_CANARY)
    world.platform.traces = FakeTraces()
    return world, release("v2")


def test_a_deployment_rolls_back_when_the_new_slots_database_hop_is_too_slow() -> None:
    world, v2 = _catalog_world()
    assert world.platform.traces is not None
    world.platform.traces.per_slot = {Slot.GREEN: [quote_trace("c2", 305) for _ in range(20)],
                                      Slot.BLUE: [quote_trace("c1", 5) for _ in range(20)]}
    state = deploy(world.ctx(), REF, v2, HOP_CANARY)
    assert state.phase.value == "rolled_back"
    assert "hop_p95_ms of catalog db.query 305 > 200" in state.reason
    assert {slot for _, _, slot in world.platform.traces.asked} == {Slot.GREEN}  # the new slot's traces


def test_a_deployment_whose_hops_are_fine_succeeds() -> None:
    world, v2 = _catalog_world()
    assert world.platform.traces is not None
    world.platform.traces.per_slot = {Slot.GREEN: [quote_trace("c2", 8) for _ in range(20)]}
    assert deploy(world.ctx(), REF, v2, HOP_CANARY).phase.value == "succeeded"


def test_without_a_trace_source_a_per_hop_check_is_inconclusive_and_says_why() -> None:
    world, v2 = _catalog_world()
    world.platform.traces = None
    state = deploy(world.ctx(), REF, v2, HOP_CANARY)
    assert state.phase.value == "rolled_back"  # on_inconclusive: rollback, after the limit
    assert "keeps no traces the toolkit can read" in " ".join(world.history())


def test_validate_warns_that_per_hop_checks_cannot_be_judged_on_aws(write_project: WriteProject) -> None:
    from tests.unit.test_validate_aws_windows import PROJECT, service

    text = service("3m", "1m").replace(
        "  analysis: {window: 1m}",
        '  analysis: {window: 1m, checks: [{metric: hop_p95_ms, hop: "catalog db.query", max: 200}]}')
    messages = [str(w) for w in window_warnings(load_project(write_project(PROJECT, {"orders": text})))]
    assert messages == [
        "service orders on aws-dev: hop_p95_ms of catalog db.query cannot be judged here: the toolkit "
        "reads no traces on AWS yet, so every analysis is Inconclusive and on_inconclusive (rollback) "
        "decides; keep per-hop checks to local environments or accept that"]


def test_local_traces_are_those_the_environments_router_sent_to_the_service_and_slot(tmp_path: Path) -> None:
    store = SpanStore.of(tmp_path)

    def routed(trace_id: str, env: str, service: str, slot: str, start: float) -> SpanRecord:
        attributes = {"pipeline.environment": env, "pipeline.service": service, "pipeline.slot": slot,
                      "pipeline.release": "r1"}
        return SpanRecord(trace_id * 32, f"{next(_ids):016x}", None, f"GET /{service}*", "router", start,
                          start + 0.1, attributes, "ok")

    store.add([routed("a", "dev", "catalog", "green", 100.0), routed("b", "dev", "catalog", "blue", 101.0),
               routed("c", "qa", "catalog", "green", 102.0), routed("d", "dev", "orders", "green", 103.0),
               routed("e", "dev", "catalog", "green", 50.0)])  # before the window
    traces = LocalTraces(tmp_path, "dev", "catalog")
    assert [t[0].trace_id for t in traces.traces(90.0, 200.0, Slot.GREEN)] == ["a" * 32]
    assert sorted(t[0].trace_id for t in traces.traces(90.0, 200.0)) == ["a" * 32, "b" * 32]
    assert traces.traces(90.0, 100.5, Slot.BLUE) == []  # started after the window


def test_the_stable_releases_when_known_are_the_baseline_even_with_fewer_traces() -> None:
    traces = [quote_trace("c1", 5) for _ in range(10)] + [quote_trace("c2", 305) for _ in range(14)]
    by_count = hop_report(traces)
    assert by_count is not None and by_count.groups[0].label == "catalog c2 (green)"  # most traces
    report = hop_report(traces, stable={"catalog": ("blue", "c1"), "orders": ("blue", "o1")})
    assert report is not None
    assert [(g.label, g.stable) for g in report.groups] == [("catalog c1 (blue)", True),
                                                            ("catalog c2 (green)", False)]
    assert [c.hop for _, c in report.flagged] == ["catalog db.query"]
