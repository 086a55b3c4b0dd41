"""The notify Lambda handler, called directly with API Gateway HTTP API v2 events.

Run with ``python -m pytest services/notify/tests``. Each test that needs a fresh process
state (cold start, fault) loads the module again under a unique name.
"""

from __future__ import annotations

import base64
import importlib.util
import itertools
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HANDLER_FILE = Path(__file__).resolve().parents[1] / "handler.py"
_fresh = itertools.count()


def load_handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"notify_handler_{next(_fresh)}", HANDLER_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("NOTIFY_KDF_ITERATIONS", "1000")
    monkeypatch.delenv("FAIL_RATE", raising=False)
    return load_handler()


def event(method: str, path: str, body: Any = None, *, b64: bool = False) -> dict[str, Any]:
    raw = json.dumps(body) if body is not None else ""
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": path}},
        "body": base64.b64encode(raw.encode()).decode() if b64 else raw,
        "isBase64Encoded": b64,
    }


class Context:
    aws_request_id = "req-1"


ORDER_CREATED = {
    "template": "order_created",
    "to": "ann@example.com",
    "params": {"name": "Ann", "order_id": 7},
}


def test_post_renders_and_signs_the_template(handler: ModuleType) -> None:
    response = handler.handle(event("POST", "/notify", ORDER_CREATED), Context())
    body = json.loads(response["body"])
    assert response["statusCode"] == 202
    assert response["headers"]["content-type"] == "application/json"
    assert body["message"] == "Hello Ann, your order 7 is confirmed."
    assert body["request_id"] == "req-1" and len(body["signature"]) == 16


def test_base64_body_is_decoded(handler: ModuleType) -> None:
    response = handler.handle(event("POST", "/notify", ORDER_CREATED, b64=True), None)
    assert response["statusCode"] == 202


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (None, "JSON object"),
        ({"template": "nope", "to": "x"}, "one of"),
        ({"template": "welcome", "to": "x", "channel": "fax"}, "channel"),
        ({"template": "order_created", "to": "x", "params": {}}, "needs parameter order_id"),
    ],
)
def test_bad_requests_answer_400_with_the_reason(handler: ModuleType, body: Any, needle: str) -> None:
    response = handler.handle(event("POST", "/notify", body), None)
    assert response["statusCode"] == 400 and needle in json.loads(response["body"])["error"]


def test_health_version_and_unknown_routes(handler: ModuleType) -> None:
    for path in ("/health", "/notify/health"):
        assert handler.handle(event("GET", path), None)["statusCode"] == 200
    version = json.loads(handler.handle(event("GET", "/notify/version"), None)["body"])
    assert version["service"] == "notify" and version["version"]
    assert handler.handle(event("GET", "/notify"), None)["statusCode"] == 405
    assert handler.handle(event("GET", "/orders"), None)["statusCode"] == 404


def test_only_the_first_invocation_of_a_process_is_a_cold_start(handler: ModuleType) -> None:
    responses = [handler.handle(event("GET", "/notify/health"), None) for _ in range(3)]
    flags = [r["headers"]["x-cold-start"] for r in responses]
    assert flags == ["true", "false", "false"]
    assert handler.COLD_START_MS > 0


def test_import_cost_grows_with_the_kdf_iterations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_KDF_ITERATIONS", "1")
    cheap = load_handler()
    monkeypatch.setenv("NOTIFY_KDF_ITERATIONS", "400000")
    costly = load_handler()
    assert costly.KDF_ITERATIONS == 400000 and costly.COLD_START_MS > cheap.COLD_START_MS


def test_fail_rate_fails_exactly_its_share_of_notifications(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_KDF_ITERATIONS", "1000")
    monkeypatch.setenv("FAIL_RATE", "0.5")
    faulty = load_handler()
    codes = [faulty.handle(event("POST", "/notify", ORDER_CREATED), None)["statusCode"] for _ in range(6)]
    assert codes.count(500) == 3 and codes.count(202) == 3
    assert faulty.handle(event("GET", "/notify/health"), None)["statusCode"] == 200


def test_direct_invocation_with_an_object_body_is_a_post(handler: ModuleType) -> None:
    smoke = {"path": "/notify", "body": {"to": "smoke@example.com", "template": "welcome"}}
    response = handler.handle(smoke, None)
    assert response["statusCode"] == 202
    assert json.loads(response["body"])["message"] == "Welcome aboard, there!"


def test_rest_api_v1_event_and_warm_up_ping_are_understood(handler: ModuleType) -> None:
    v1 = {"httpMethod": "GET", "path": "/notify/version", "body": None}
    assert handler.handle(v1, None)["statusCode"] == 200
    warm = handler.handle({"source": "pipeline.warm-up"}, None)
    assert warm["statusCode"] == 200 and json.loads(warm["body"])["warm"] is True


def test_the_keep_warm_ping_is_answered_without_any_work(handler: ModuleType) -> None:
    ping = handler.handle({"pipeline-keep-warm": True}, None)
    assert ping["statusCode"] == 200 and json.loads(ping["body"])["warm"] is True
    assert handler.is_keep_warm({"pipeline-keep-warm": True})
    assert not handler.is_keep_warm({"pipeline-keep-warm": "yes"})  # only the marker exactly true
    assert not handler.is_keep_warm({"path": "/notify", "body": {}})
