"""The local Lambda runtime with real worker processes and real HTTP on 127.0.0.1.

The handler module sleeps 0.2 s at import time, so a cold start (a new worker that imports
it) is visible as ``init_ms >= 200`` and warm starts reuse the same process id.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import psutil
import pytest
from aiohttp import web

from pipeline.core.errors import NotFoundError, UsageError
from pipeline.local.lambda_.package import write_package
from pipeline.local.lambda_.runtime import InvokeResult, LambdaRuntime
from pipeline.local.lambda_.server import LambdaServer
from tests.local.support.lambda_runtime import (
    gone,
    http,
    invoke,
    make_source,
    make_zip,
    publish,
    wait_until,
    worker_children,
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LambdaServer]:
    with LambdaServer(tmp_path / "runtime", seed=7) as running:
        yield running
    assert worker_children() == []


def test_publishing_the_same_zip_twice_creates_one_version(server: LambdaServer, tmp_path: Path) -> None:
    v1 = make_zip(tmp_path, "v1")
    assert publish(server, v1) == "1"
    assert publish(server, v1) == "1"
    assert publish(server, make_zip(tmp_path, "v2")) == "2"
    described = server.call(lambda rt: rt.describe("orders"))
    assert [v["version"] for v in described["versions"]] == ["1", "2"]
    assert publish(server, v1, timeout=5.0) == "3"  # same code, new configuration: a new version


def test_a_cold_start_imports_the_handler_and_the_warm_worker_is_reused(
    server: LambdaServer, tmp_path: Path
) -> None:
    publish(server, make_zip(tmp_path, "v1"))
    first, second = invoke(server, "1"), invoke(server, "1")
    assert first.status == 200 and first.cold_start and first.init_ms >= 200
    assert second.status == 200 and not second.cold_start and second.init_ms == 0
    assert first.payload["pid"] == second.payload["pid"]
    assert first.payload["version"] == "1"
    window = server.call(lambda rt: rt.metrics("orders", "1", time.time() - 60, time.time() + 1))
    assert (window["invocations"], window["cold_starts"], window["errors"]) == (2, 1, 0)
    assert window["duration_p95_ms"] is not None


def test_idle_on_demand_workers_are_stopped_after_the_idle_timeout(tmp_path: Path) -> None:
    with LambdaServer(tmp_path / "runtime", idle_timeout=0.3) as server:
        publish(server, make_zip(tmp_path, "v1"))
        server.call(lambda rt: rt.set_provisioned_concurrency("orders", "1", 1))
        wait_until(lambda: server.call(lambda rt: rt.provisioned_status("orders", "1")) == "READY")

        async def two_at_once() -> list[InvokeResult]:
            return list(await asyncio.gather(*(server.runtime.invoke("orders", "1", {}) for _ in range(2))))

        results = sorted(server.run(two_at_once()), key=lambda r: r.cold_start)
        assert [r.cold_start for r in results] == [False, True]  # one spilled over to on-demand
        provisioned_pid, on_demand_pid = (r.payload["pid"] for r in results)
        wait_until(lambda: on_demand_pid not in server.call(lambda rt: rt.worker_pids()))
        assert server.call(lambda rt: rt.worker_pids()) == [provisioned_pid]  # never reaped for idleness
        again = invoke(server, "1")
        assert not again.cold_start and again.payload["pid"] == provisioned_pid


def test_alias_at_ten_percent_sends_a_tenth_of_1000_invocations_to_the_new_version(
    server: LambdaServer, tmp_path: Path
) -> None:
    publish(server, make_zip(tmp_path, "v1"))
    publish(server, make_zip(tmp_path, "v2"))
    server.call(lambda rt: rt.set_alias("orders", "live", {"1": 0.9, "2": 0.1}))
    assert server.call(lambda rt: rt.get_alias("orders", "live")) == {"1": 0.9, "2": 0.1}

    async def many() -> list[InvokeResult]:
        return [await server.runtime.invoke("orders", "live", {}) for _ in range(1000)]

    results = server.run(many())
    by_version = Counter(r.version for r in results)
    assert all(r.status == 200 for r in results)
    assert {r.payload["marker"] for r in results if r.version == "2"} == {"v2"}
    # 10% +/- 3 percentage points of 1000 (3 points is over 3 standard deviations)
    assert 70 <= by_version["2"] <= 130, by_version
    now = time.time()
    counted = {v: server.call(lambda rt, v=v: rt.metrics("orders", v, now - 120, now + 1)) for v in "12"}
    assert {v: m["invocations"] for v, m in counted.items()} == {"1": by_version["1"], "2": by_version["2"]}


def test_reserved_concurrency_two_throttles_six_of_eight_concurrent_requests_with_429(
    server: LambdaServer, tmp_path: Path
) -> None:
    publish(server, make_zip(tmp_path, "v1"))
    server.call(lambda rt: rt.set_alias("orders", "live", {"1": 1.0}))
    server.call(lambda rt: rt.set_reserved_concurrency("orders", 2))
    gate = tmp_path / "gate"
    url = f"{server.base_url}invoke/orders/live/gate?gate={gate}"
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(http, url) for _ in range(8)]
        # the two admitted invocations hold their slots until the gate opens, so exactly
        # six are throttled, whatever the machine's speed
        wait_until(lambda: sum(f.done() for f in futures) >= 6)
        gate.touch()
        wait(futures, timeout=30)
    statuses = sorted(f.result()[0] for f in futures)
    assert statuses == [201, 201, 429, 429, 429, 429, 429, 429]
    window = server.call(lambda rt: rt.metrics("orders", "1", time.time() - 60, time.time() + 1))
    assert (window["invocations"], window["throttles"], window["errors"]) == (2, 6, 0)
    throttled = invoke(server, "live", {"action": "sleep", "seconds": 0})
    assert throttled.status == 200  # slots are free again


def test_provisioned_concurrency_means_no_cold_starts_on_that_version(
    server: LambdaServer, tmp_path: Path
) -> None:
    publish(server, make_zip(tmp_path, "v1"))
    publish(server, make_zip(tmp_path, "v2"))
    server.call(lambda rt: rt.set_provisioned_concurrency("orders", "2", 2))
    wait_until(lambda: server.call(lambda rt: rt.provisioned_status("orders", "2")) == "READY")
    assert len(server.call(lambda rt: rt.worker_pids("orders"))) == 2
    results = [invoke(server, "2") for _ in range(5)]
    assert [r.cold_start for r in results] == [False] * 5
    assert invoke(server, "1").cold_start  # no provisioned concurrency there
    now = time.time()
    assert server.call(lambda rt: rt.metrics("orders", "2", now - 60, now + 1))["cold_starts"] == 0
    assert server.call(lambda rt: rt.metrics("orders", "1", now - 60, now + 1))["cold_starts"] == 1

    server.call(lambda rt: rt.set_provisioned_concurrency("orders", "2", 0))
    wait_until(lambda: len(server.call(lambda rt: rt.worker_pids("orders"))) == 1)  # only v1's


def test_a_handler_exception_is_an_error_result_a_502_and_an_error_in_metrics(
    server: LambdaServer, tmp_path: Path
) -> None:
    publish(server, make_zip(tmp_path, "v1"))
    result = invoke(server, "1", {"action": "boom"})
    assert result.status == 502 and not result.throttled
    assert result.error == "RuntimeError: deliberate failure"
    assert result.payload["errorType"] == "RuntimeError"
    status, _, body = http(f"{server.base_url}invoke/orders/1/boom")
    assert status == 502 and json.loads(body) == {"message": "Internal Server Error"}
    assert not invoke(server, "1").cold_start  # the environment survives a handler error
    window = server.call(lambda rt: rt.metrics("orders", "1", time.time() - 60, time.time() + 1))
    assert (window["invocations"], window["errors"]) == (3, 2)


def test_a_timeout_destroys_the_environment_and_answers_504(server: LambdaServer, tmp_path: Path) -> None:
    publish(server, make_zip(tmp_path, "v1"), timeout=0.5)
    pid = invoke(server, "1").payload["pid"]
    result = invoke(server, "1", {"action": "sleep", "seconds": 5})
    assert result.status == 504 and "timed out" in result.error
    assert gone(pid)
    after = invoke(server, "1")
    assert after.cold_start and after.payload["pid"] != pid
    window = server.call(lambda rt: rt.metrics("orders", "1", time.time() - 60, time.time() + 1))
    assert (window["invocations"], window["errors"], window["cold_starts"]) == (3, 1, 2)


def test_an_import_error_fails_invocations_and_provisioned_concurrency(
    server: LambdaServer, tmp_path: Path
) -> None:
    source = make_source(tmp_path / "broken", "x", handler="import no_such_module_here\n")
    write_package(source, tmp_path / "broken.zip")
    publish(server, tmp_path / "broken.zip")
    result = invoke(server, "1")
    assert result.status == 502 and result.cold_start
    assert result.error.startswith("Runtime.ImportModuleError")
    server.call(lambda rt: rt.set_provisioned_concurrency("orders", "1", 1))
    wait_until(lambda: server.call(lambda rt: rt.provisioned_status("orders", "1")) == "FAILED")
    assert "no_such_module_here" in server.call(lambda rt: rt.provisioned("orders", "1"))["reason"]


def test_http_requests_become_http_api_events_and_responses_map_back(
    server: LambdaServer, tmp_path: Path
) -> None:
    publish(server, make_zip(tmp_path, "v1"))
    server.call(lambda rt: rt.set_alias("orders", "live", {"1": 1.0}))
    url = f"{server.base_url}invoke/orders/live/orders/42?a=1&a=2"
    status, headers, body = http(url, data=b'{"n": 1}', headers={"Cookie": "k=v; z=y"})
    assert status == 201
    assert headers["x-marker"] == "v1" and headers["X-Lambda-Version"] == "1"
    assert headers["Set-Cookie"] == "session=1"
    seen = json.loads(body)
    assert seen["path"] == "/orders/42" and seen["query"] == "a=1&a=2" and seen["method"] == "POST"
    assert seen["body"] == '{"n": 1}' and seen["cookies"] == ["k=v", "z=y"]
    assert seen["route"] == "$default" and seen["proxy"] is None
    status, _, body = http(f"{server.base_url}invoke/unknown/live/")
    assert status == 503 and b"no Lambda function" in body


def test_a_router_front_invokes_the_live_alias_with_its_path_rule(
    server: LambdaServer, tmp_path: Path
) -> None:
    publish(server, make_zip(tmp_path, "v1"))
    server.call(lambda rt: rt.set_alias("orders", "live", {"1": 1.0}))

    async def route(request: web.Request) -> web.Response:
        return await server.runtime.invoke_http("orders", request, "/orders/*")

    async def start_front() -> web.AppRunner:
        app = web.Application()
        app.router.add_route("*", "/orders/{tail:.*}", route)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = server.run(start_front())
    try:
        port = runner.addresses[0][1]
        status, headers, body = http(f"http://127.0.0.1:{port}/orders/42/items")
    finally:
        server.run(runner.cleanup())
    seen = json.loads(body)
    assert status == 201 and headers["X-Lambda-Version"] == "1"
    assert seen["path"] == "/orders/42/items"
    assert (seen["route"], seen["proxy"]) == ("ANY /orders/{proxy+}", "42/items")


def test_the_control_api_answers_json_errors_for_bad_requests(server: LambdaServer, tmp_path: Path) -> None:
    publish(server, make_zip(tmp_path, "v1"))
    request = urllib.request.Request(
        f"{server.base_url}functions/orders/aliases/live", data=b'{"weights": {"1": 0.5}}', method="PUT"
    )
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(request, timeout=10)
    assert bad.value.code == 400
    assert json.loads(bad.value.read())["error"]["type"] == "UsageError"
    status, _, body = http(f"{server.base_url}functions/nothing")
    assert status == 404 and json.loads(body)["error"]["type"] == "NotFoundError"
    with pytest.raises(UsageError, match=r"sum to 0\.5"):
        server.call(lambda rt: rt.set_alias("orders", "live", {"1": 0.5}))
    with pytest.raises(NotFoundError, match="no version 9"):
        server.call(lambda rt: rt.set_alias("orders", "live", {"9": 1.0}))


def test_versions_aliases_and_concurrency_survive_a_restart(tmp_path: Path) -> None:
    work = tmp_path / "runtime"
    with LambdaServer(work) as first:
        publish(first, make_zip(tmp_path, "v1"))
        first.call(lambda rt: rt.set_alias("orders", "live", {"1": 1.0}, "blue=100 green=0"))
        first.call(lambda rt: rt.set_reserved_concurrency("orders", 3))
        first.call(lambda rt: rt.set_provisioned_concurrency("orders", "1", 1))
    with LambdaServer(work) as second:
        assert second.call(lambda rt: rt.get_alias("orders", "live")) == {"1": 1.0}
        assert second.call(lambda rt: rt.alias_description("orders", "live")) == "blue=100 green=0"
        assert second.call(lambda rt: rt.reserved_concurrency("orders")) == 3
        wait_until(lambda: second.call(lambda rt: rt.provisioned_status("orders", "1")) == "READY")
        assert invoke(second, "live").payload["marker"] == "v1"
    assert worker_children() == []


def test_close_stops_every_worker_process(tmp_path: Path) -> None:
    server = LambdaServer(tmp_path / "runtime").start()
    try:
        publish(server, make_zip(tmp_path, "v1"))
        server.call(lambda rt: rt.set_provisioned_concurrency("orders", "1", 2))

        async def burst() -> list[InvokeResult]:
            return list(await asyncio.gather(*(server.runtime.invoke("orders", "1", {}) for _ in range(4))))

        assert all(r.status == 200 for r in server.run(burst()))
        pids = server.call(lambda rt: rt.worker_pids())
        assert len(pids) >= 4
        assert {p.pid for p in worker_children()} >= set(pids)
    finally:
        server.stop()
    assert worker_children() == []
    assert all(gone(p) for p in pids)


PLANE = """
import asyncio, sys
from pathlib import Path
from pipeline.local.lambda_.runtime import LambdaRuntime

async def main():
    runtime = LambdaRuntime(Path(sys.argv[1]))
    runtime.publish_version("orders", Path(sys.argv[2]), "app.handler", memory=128, timeout=3)
    result = await runtime.invoke("orders", "1", {})
    print(result.payload["pid"], flush=True)
    await asyncio.sleep(60)  # killed before this ends

asyncio.run(main())
"""


def test_workers_exit_when_the_plane_process_is_killed(tmp_path: Path) -> None:
    plane = subprocess.Popen(
        [sys.executable, "-c", PLANE, str(tmp_path / "runtime"), str(make_zip(tmp_path, "v1"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert plane.stdout is not None
        worker = int(plane.stdout.readline())
        assert psutil.Process(worker).ppid() == plane.pid
    finally:
        plane.kill()  # SIGKILL: the runtime gets no chance to clean up
        plane.wait()
    wait_until(lambda: gone(worker))


def test_a_closed_runtime_refuses_new_work(tmp_path: Path) -> None:
    runtime = LambdaRuntime(tmp_path / "runtime")
    asyncio.run(runtime.close())
    with pytest.raises(Exception, match="closed"):
        runtime.publish_version("orders", make_zip(tmp_path, "v1"), "app.handler", memory=128, timeout=3)
