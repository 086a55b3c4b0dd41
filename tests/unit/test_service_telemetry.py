"""The example services' tracing (services/*/telemetry.py, one file shipped in each image):
context from a caller's traceparent or, behind an ALB, its X-Amzn-Trace-Id; both carried on."""

from __future__ import annotations

import email.message
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SERVICES = Path(__file__).resolve().parents[2] / "services"
ALB = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _module(service: str) -> ModuleType:
    file = SERVICES / service / "telemetry.py"
    spec = importlib.util.spec_from_file_location(f"{service}_telemetry_test", file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_service_ships_the_same_telemetry_module() -> None:
    copies = {p.read_text() for p in SERVICES.glob("*/telemetry.py")}
    assert len(copies) == 1


def _headers(**values: str) -> email.message.Message:
    message = email.message.Message()  # what http.server hands a handler
    for name, value in values.items():
        message[name.replace("_", "-")] = value
    return message


@pytest.mark.parametrize(("headers", "trace_id", "parent"), [
    ({"X_Amzn_Trace_Id": ALB}, "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8"),
    ({"X_Amzn_Trace_Id": ALB, "traceparent": TRACEPARENT},
     "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
])
def test_a_request_continues_the_callers_trace_and_a_call_carries_it_on(
        headers: dict[str, str], trace_id: str, parent: str) -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    telemetry = _module("orders").Telemetry("orders", "1.0.0", provider=provider)
    outgoing: dict[str, str] = {}
    with telemetry.server("GET", "/orders/quote", _headers(**headers)) as span:
        telemetry.failed(span, 200)
        with telemetry.database("SELECT", "orders"):
            pass
        with telemetry.call("catalog", "GET", "http://x/catalog/1", outgoing):
            pass
    server, = (s for s in exported.get_finished_spans() if s.name == "GET /orders/quote")
    assert format(server.context.trace_id, "032x") == trace_id
    assert server.parent is not None and format(server.parent.span_id, "016x") == parent
    assert outgoing["traceparent"].split("-")[1] == trace_id
    assert f"Root=1-{trace_id[:8]}-{trace_id[8:]}" in outgoing["X-Amzn-Trace-Id"]  # through an ALB too
    names = {s.name for s in exported.get_finished_spans()}
    assert names == {"GET /orders/quote", "db.query", "call catalog"}


def test_without_a_receiver_the_service_does_not_trace() -> None:
    telemetry = _module("catalog").Telemetry("catalog", "1.0.0", environ={})
    assert not telemetry.enabled
    with telemetry.server("GET", "/catalog", _headers(traceparent=TRACEPARENT)) as span:
        telemetry.failed(span, 500)  # a stand-in span: nothing to record, nothing raised
