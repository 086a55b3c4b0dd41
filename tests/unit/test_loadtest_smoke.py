"""Pure parts of the stages: smoke events to HTTP requests, routed paths, locust command lines."""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path

import pytest

from pipeline.core.errors import PlatformError
from pipeline.loadtest import LoadSettings, ReportPaths
from pipeline.loadtest.command import LocustCommand
from pipeline.loadtest.processes import ProcessGroup
from pipeline.loadtest.smoke import SmokeRequest, route_prefix, routed_path


def test_http_api_v2_event_becomes_its_request() -> None:
    event = {
        "version": "2.0",
        "rawPath": "/notify",
        "rawQueryString": "dry=1",
        "requestContext": {"http": {"method": "post", "path": "/notify"}},
        "headers": {"Content-Type": "application/json"},
        "body": base64.b64encode(b'{"to": "a"}').decode(),
        "isBase64Encoded": True,
    }
    request = SmokeRequest.from_event(event, "/fallback")
    assert (request.method, request.path, request.body) == ("POST", "/notify?dry=1", b'{"to": "a"}')
    assert request.headers == (("content-type", "application/json"),)
    assert request.expect == ()


def test_path_and_body_spec_posts_the_body_as_json() -> None:
    request = SmokeRequest.from_event({"path": "/notify", "body": {"template": "welcome"}}, "/x")
    assert (request.method, request.path) == ("POST", "/notify")
    assert json.loads(request.body) == {"template": "welcome"}
    assert dict(request.headers)["content-type"] == "application/json"


def test_rest_api_v1_event_keeps_method_and_text_body_and_expectations() -> None:
    event = {"httpMethod": "GET", "path": "/notify/health", "body": None, "expect": [200, 204]}
    request = SmokeRequest.from_event(event, "/x")
    assert (request.method, request.path, request.body, request.expect) == (
        "GET",
        "/notify/health",
        b"",
        (200, 204),
    )


def test_any_other_event_is_posted_whole_to_the_route() -> None:
    request = SmokeRequest.from_event({"source": "aws.events", "detail": {"n": 1}}, "/notify")
    assert (request.method, request.path) == ("POST", "/notify")
    assert json.loads(request.body) == {"source": "aws.events", "detail": {"n": 1}}


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/orders*", "/health", "/orders/health"),
        ("/orders*", "/orders/health", "/orders/health"),
        ("/catalog/*", "/health", "/catalog/health"),
        ("/*", "/health", "/health"),
        ("/api/v?/orders*", "/health", "/api/v/health"),
    ],
)
def test_health_path_goes_under_the_route_unless_the_route_matches_it(
    pattern: str, path: str, expected: str
) -> None:
    assert routed_path(pattern, path) == expected


def test_route_prefix_is_the_literal_start_of_the_pattern() -> None:
    assert route_prefix("/orders*") == "/orders"
    assert route_prefix("/notify/*") == "/notify"
    assert route_prefix("/*") == ""


def test_locust_command_lines_for_single_master_and_worker(tmp_path: Path) -> None:
    settings = LoadSettings(
        Path("loadtests/orders.py"), users=5, spawn_rate=2.5, duration=4.4, user_class="OrdersUser"
    )
    cmd = LocustCommand("/py", tmp_path / "orders.py", "http://127.0.0.1:9", settings)
    paths = ReportPaths(tmp_path / "run")
    single = cmd.single(paths)
    assert single[:3] == ["/py", "-m", "locust"]
    flags = dict(itertools.pairwise(single))  # each flag -> the token after it
    assert flags["--users"] == "5" and flags["--spawn-rate"] == "2.5" and flags["--run-time"] == "4s"
    assert flags["--host"] == "http://127.0.0.1:9" and flags["--exit-code-on-error"] == "0"
    assert flags["--json-file"] == str(tmp_path / "run" / "stats")  # locust appends .json
    assert flags["--html"] == str(paths.html) and "--headless" in single and single[-1] == "OrdersUser"
    master = cmd.master(paths, 5601, 2)
    assert master[master.index("--master-bind-host") + 1] == "127.0.0.1"
    assert master[master.index("--expect-workers") + 1] == "2"
    worker = cmd.worker(5601)
    assert "--worker" in worker and worker[worker.index("--master-port") + 1] == "5601"
    assert "--json-file" not in worker and "--html" not in worker  # only the master reports


def test_a_program_that_cannot_start_is_a_platform_error(tmp_path: Path) -> None:
    with (
        ProcessGroup(cwd=tmp_path, env={}) as group,
        pytest.raises(PlatformError, match="cannot start /nowhere/py"),
    ):
        group.start(["/nowhere/py", "-m", "locust"], tmp_path / "x.log")
    assert group.pids == []
