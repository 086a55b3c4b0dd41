"""The local span store: what it keeps, what its queries find, and how OTLP bodies decode."""

from __future__ import annotations

import stat
import time
from pathlib import Path

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipeline import tracing
from pipeline.local.span_export import StoreExporter, records_from_otlp
from pipeline.local.span_writer import SpanWriter
from pipeline.local.spans import SpanRecord, SpanStore, row_of, valid_status

T0 = 1_700_000_000.0


def span(trace: str, sid: str, parent: str | None, service: str, start: float, ms: float,
         status: str = "ok", **attributes: object) -> SpanRecord:
    return SpanRecord(trace.rjust(32, "0"), sid.rjust(16, "0"), parent.rjust(16, "0") if parent else None,
                      f"{service} work", service, start, start + ms / 1000, dict(attributes), status)


def store_with_two_traces(tmp_path: Path) -> SpanStore:
    store = SpanStore(tmp_path / "spans.db")
    store.add([
        span("a", "1", None, "router", T0, 40, **{"pipeline.slot": "blue", "pipeline.release": "1.0.0",
                                                   "pipeline.environment": "dev",
                                                   "http.response.status_code": 200}),
        span("a", "2", "1", "orders", T0 + 0.001, 30),
        span("a", "3", "2", "catalog", T0 + 0.002, 10),
        span("b", "1", None, "router", T0 + 5, 400, "error",
             **{"pipeline.slot": "green", "pipeline.release": "1.1.0", "http.response.status_code": 503}),
        span("b", "2", "1", "orders", T0 + 5.001, 390),
    ], now=T0)
    return store


def test_store_file_is_private(tmp_path: Path) -> None:
    store = SpanStore(tmp_path / "spans.db")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_find_lists_newest_first_with_root_and_services(tmp_path: Path) -> None:
    found = store_with_two_traces(tmp_path).find()
    assert [t.trace_id[-1] for t in found] == ["b", "a"]
    first = found[1]
    assert (first.service, first.spans, first.services) == ("router", 3, ("router", "orders", "catalog"))
    assert (first.slot, first.release, first.status) == ("blue", "1.0.0", "ok")
    assert round(first.duration_ms) == 40


def test_find_filters_by_service_slot_release_status_and_latency(tmp_path: Path) -> None:
    store = store_with_two_traces(tmp_path)
    ids = lambda **kw: [t.trace_id[-1] for t in store.find(**kw)]  # noqa: E731
    assert ids(service="catalog") == ["a"]
    assert ids(slot="green") == ["b"]
    assert ids(release="1.0.0") == ["a"]
    assert ids(status="error") == ["b"]
    assert ids(status="ok") == ["a"]
    assert ids(status="5xx") == ["b"]
    assert ids(status="200") == ["a"]
    assert ids(min_ms=100) == ["b"]
    assert ids(since=T0 + 1) == ["b"]
    assert ids(service="orders", slot="blue") == ["a"]  # each filter met by some span of the trace
    assert ids(service="orders", slot="green", release="1.0.0") == []
    assert ids(environment="dev") == ["a"]
    assert ids(limit=1) == ["b"]


def test_trace_returns_spans_in_start_order_with_attributes(tmp_path: Path) -> None:
    spans = store_with_two_traces(tmp_path).trace("a".rjust(32, "0"))
    assert [s.service for s in spans] == ["router", "orders", "catalog"]
    assert spans[0].parent_id is None and spans[1].parent_id == spans[0].span_id
    assert spans[0].attributes["pipeline.slot"] == "blue"
    assert store_with_two_traces(tmp_path / "x").trace("f" * 32) == []


def test_keeps_at_most_max_spans_newest(tmp_path: Path) -> None:
    store = SpanStore(tmp_path / "spans.db", max_spans=100)
    store.add([span(f"{i:x}", "1", None, "s", T0 + i, 1) for i in range(600)], now=T0 + 600)
    assert store.count() == 100
    assert store.find(limit=1)[0].trace_id == f"{599:x}".rjust(32, "0")


def test_drops_spans_older_than_max_age(tmp_path: Path) -> None:
    store = SpanStore(tmp_path / "spans.db", max_age=60)
    store.add([span("1", "1", None, "s", T0, 1), span("2", "1", None, "s", T0 + 100, 1)])
    store.prune(now=T0 + 120)
    assert [t.trace_id[-1] for t in store.find()] == ["2"]


def test_status_filters_accepted() -> None:
    assert all(map(valid_status, ["ok", "error", "503", "5xx", "4XX"]))
    assert not any(map(valid_status, ["bad", "99", "700", "6xx", ""]))


def sdk_spans() -> list:  # type: ignore[type-arg]
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(
        {"service.name": "orders", "pipeline.slot": "green", "pipeline.release": "2.0.0"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET /orders") as root:
        with tracer.start_as_current_span("db", attributes={"db.statement": "SELECT 1", "n": (1, 2)}):
            pass
        root.set_attribute("http.response.status_code", 200)
    return list(memory.get_finished_spans())


def test_otlp_protobuf_body_decodes_to_the_same_spans_as_the_sdk_exporter(tmp_path: Path) -> None:
    finished = sdk_spans()
    decoded = records_from_otlp(encode_spans(finished).SerializeToString())
    direct = SpanStore(tmp_path / "direct.db")
    StoreExporter(direct).export(finished)
    trace_id = decoded[0].trace_id
    assert sorted((s.name, s.parent_id is None) for s in decoded) == [("GET /orders", True), ("db", False)]
    assert {s.service for s in decoded} == {"orders"}
    db = next(s for s in decoded if s.name == "db")
    assert db.attributes == {"pipeline.slot": "green", "pipeline.release": "2.0.0",
                             "db.statement": "SELECT 1", "n": [1, 2]}
    assert [(s.span_id, s.parent_id, s.attributes) for s in direct.trace(trace_id)] == \
        [(s.span_id, s.parent_id, s.attributes) for s in sorted(decoded, key=lambda s: s.start)]
    assert direct.find(slot="green", release="2.0.0")[0].trace_id == trace_id


def test_tracing_is_off_without_a_receiver_or_when_switched_off() -> None:
    assert tracing.setup("x", environ={}, set_global=False) is None
    on = {"PIPELINE_TRACES_ENDPOINT": "http://127.0.0.1:9/otlp/v1/traces"}
    provider = tracing.setup("x", environ=on, set_global=False)
    assert provider is not None
    provider.shutdown()
    assert tracing.setup("x", environ={**on, "PIPELINE_TRACING": "off"}, set_global=False) is None


def test_a_batch_of_any_size_is_stored_whole_by_statements_of_many_rows(tmp_path: Path) -> None:
    store = SpanStore(tmp_path / "spans.db")
    now = time.time()
    attrs = {"http.response.status_code": 503, "pipeline.slot": "green", "pipeline.release": "v2",
             "pipeline.environment": "dev", "url.path": "/a"}
    rows = [row_of(f"{i:032x}", f"{i + 1:016x}", None, "GET /*", "router", now + i, now + i + 0.5,
                   "error", attrs) for i in range(1, 1_000)]  # 999: 7 x 128 + 6 x 16 + 7 x 1
    assert store.add_rows(rows) == 999
    assert store.add_rows(rows[:3]) == 3  # stored again: replaced, not doubled
    assert store.count() == 999
    (span,) = store.trace(f"{500:032x}")
    assert (span.span_id, span.start, span.status) == (f"{501:016x}", now + 500, "error")
    assert span.attributes == attrs
    found = store.find(slot="green", release="v2", status="5xx", environment="dev", limit=5)
    assert [t.trace_id for t in found] == [f"{i:032x}" for i in range(999, 994, -1)]


def test_the_span_writer_stores_full_batches_at_once_and_the_rest_on_close(tmp_path: Path) -> None:
    store = SpanStore(tmp_path / "spans.db")
    # only a full batch, or close, writes (the router is never deemed busy here)
    writer = SpanWriter(store, delay=3600.0, batch=100, quiet=float("inf"))
    now = time.time()

    def put(first: int, last: int) -> None:
        for i in range(first, last):
            writer.put(row_of(f"{i:032x}", f"{i:016x}", None, "GET /*", "router", now, now, "unset", {}))

    put(1, 101)
    deadline = time.monotonic() + 10
    while store.count() < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.count() == 100  # a full batch woke the thread
    put(101, 151)
    time.sleep(0.2)
    assert store.count() == 100  # half a batch waits (for the delay, or close)
    writer.close()
    assert store.count() == 150 and writer.dropped == 0


def _rows(first: int, last: int) -> list[tuple[object, ...]]:
    now = time.time()
    return [row_of(f"{i:032x}", f"{i:016x}", None, "GET /*", "router", now, now, "unset", {})
            for i in range(first, last)]


def test_the_span_writer_holds_rows_while_the_router_is_busy_and_stores_them_once_quiet(
        tmp_path: Path) -> None:
    store = SpanStore(tmp_path / "spans.db")
    # the thread never looks by itself here (no timeout, no full batch): each look is the test's, at its time
    writer = SpanWriter(store, delay=3600.0, batch=10**9, quiet=1000.0, hold=5000)
    start = writer._since
    for i, second in enumerate((0.1, 0.2, 0.3)):  # 500 rows every 0.1 s: 5,000 a second, busy
        for row in _rows(500 * i, 500 * (i + 1)):
            writer.put(row)
        writer._look(start + second)
        assert store.count() == 0 and writer.queued == 500 * (i + 1)
    for row in _rows(1500, 1550):  # 50 rows in 0.1 s: 500 a second, quiet
        writer.put(row)
    writer._look(start + 0.4)
    assert store.count() == 1550 and writer.stats() == {"written": 1550, "queued": 0, "dropped": 0, "held": 3}
    writer._look(start + 0.5)  # nothing new: nothing to do
    assert store.count() == 1550
    writer.close()


def test_the_span_writer_stores_while_busy_once_it_holds_enough_and_drops_only_beyond_its_cap(
        tmp_path: Path) -> None:
    store = SpanStore(tmp_path / "spans.db")
    writer = SpanWriter(store, delay=3600.0, batch=10**9, quiet=1000.0, hold=3000, max_queued=4000)
    start = writer._since
    for row in _rows(0, 2999):
        writer.put(row)
    writer._look(start + 0.1)  # 29,990 a second and fewer than `hold` waiting: held
    assert store.count() == 0
    writer.put(_rows(2999, 3000)[0])
    writer._look(start + 0.1001)  # busier still, but `hold` rows wait: written now
    assert store.count() == 3000 and writer.queued == 0
    for row in _rows(3000, 8000):  # the cap: 4,000 waiting rows, the rest dropped and counted
        writer.put(row)
    assert writer.queued == 4000 and writer.dropped == 1000
    writer.close()
    assert store.count() == 7000 and writer.stats()["written"] == 7000


def test_store_now_writes_what_is_held_while_the_router_is_still_busy(tmp_path: Path) -> None:
    store = SpanStore(tmp_path / "spans.db")
    writer = SpanWriter(store, delay=3600.0, batch=10**9, quiet=1000.0)
    start = writer._since
    for row in _rows(0, 500):
        writer.put(row)
    writer._look(start + 0.1)  # 5,000 a second: held
    assert store.count() == 0
    for row in _rows(500, 1000):
        writer.put(row)
    assert writer.store_now(timeout=10.0)  # the writer's own thread writes them, busy or not
    assert store.count() == 1000 and writer.queued == 0
    writer.close()
