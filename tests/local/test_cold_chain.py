"""Cold starts across a call chain on the local plane: ``front`` calls ``back`` through the
environment's router. A deployment of ``front`` warms what it declares it calls (deepest
first) and its own new version before traffic moves, so the first requests after the shift
meet no cold start on either hop; without ``calls:`` the second hop starts cold. Keep-warm
pings reach the handler but are not counted as requests.

One plane for the module. Before each deployment of ``front``, ``back``'s ``live`` alias is
moved to a freshly published version, none of whose environments has started: what a
dependency looks like after its idle environments were recycled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.clock import SystemClock
from pipeline.config import load_project
from pipeline.local.factory import LocalFactory
from pipeline.local.plane.lifecycle import plane_processes, read_plane, stop_plane
from tests.local.support.chain import Chain, make_chain, service_yaml
from tests.local.support.plane import get, wait_until

REQUESTS = 2  # the first requests after the shift, sent at once (two environments per hop)
KEEP_WARM = "  keep_warm: {every: 1m, concurrency: 2}"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    made = make_chain(tmp_path_factory.mktemp("chain") / "repo")
    try:
        yield made
    finally:
        info = read_plane(made.state_dir)
        stop_plane(made.state_dir)
        if info is not None:
            assert plane_processes(info.id) == []


def test_without_declared_calls_the_second_hop_starts_cold(chain: Chain) -> None:
    commit = chain.commit_front("one", keep_warm=KEEP_WARM)
    chain.recycle_back()
    notes = chain.deploy("front", commit)

    answers = chain.first_requests(REQUESTS)
    assert {a["release"] for a in answers} == {"one"}
    assert [a["front_cold"] for a in answers] == [False] * (REQUESTS + 1), notes  # the new version was warmed
    assert [a["back_cold"] for a in answers[:REQUESTS]] == [True] * REQUESTS  # back was not
    assert answers[-1]["back_cold"] is False


def test_a_chained_warm_up_leaves_no_cold_start_on_any_hop_after_the_shift(chain: Chain) -> None:
    commit = chain.commit_front("two", calls="calls: [back]", keep_warm=KEEP_WARM)
    back = chain.recycle_back()
    since = time.time()
    notes = chain.deploy("front", commit)
    assert any(f"dev_back:{back} 2/2" in note for note in notes), notes  # deepest first, then front

    answers = chain.first_requests(REQUESTS)
    assert {a["release"] for a in answers} == {"two"}
    assert [(a["front_cold"], a["back_cold"]) for a in answers] == [(False, False)] * (REQUESTS + 1)
    # the warm-up pings are not requests: the metrics hold the real requests only, none cold
    front = live_version(chain, "dev_front")
    assert _counts(chain.metrics("dev_front", front, since)) == (REQUESTS + 1, 0)
    assert _counts(chain.metrics("dev_back", back, since)) == (REQUESTS + 1, 0)
    assert chain.client.keep_warm("dev_front")["every"] == 60.0  # lambda.keep_warm reached the plane


def test_keep_warm_pings_reach_the_handler_but_are_not_counted_as_requests(chain: Chain) -> None:
    back = chain.recycle_back()
    since = time.time()
    chain.client.set_keep_warm("dev_back", 0.2, 1)
    try:
        wait_until(lambda: chain.client.keep_warm("dev_back")["rounds"] >= 3, 20, "three keep-warm rounds")
    finally:
        chain.client.set_keep_warm("dev_back", 0, 1)
    assert chain.client.keep_warm("dev_back")["every"] == 0  # removed
    assert _counts(chain.metrics("dev_back", back, since)) == (0, 0)
    status, headers, body = get(f"http://127.0.0.1:{chain.port}/back/x")
    assert status == 200 and "x-lambda-cold-start" not in headers  # the pinged environment served it
    assert json.loads(body)["pings_seen"] >= 3
    assert _counts(chain.metrics("dev_back", back, since)) == (1, 0)


LOCUSTFILE = """
from locust import HttpUser, constant, task


class FrontUser(HttpUser):
    wait_time = constant(0.05)

    @task
    def front(self):
        self.client.get("/front/x")
"""

LOAD = "load: {locustfile: loadtests/front.py, users: 2, spawn_rate: 10, duration: 2s}"


def test_the_load_stage_reports_cold_starts_per_function_and_for_the_chain(chain: Chain) -> None:
    chain.commit("front load", {
        "loadtests/front.py": LOCUSTFILE,
        "services/front/service.yaml": service_yaml(
            "front", 10, env=f'{{ROUTER: "http://127.0.0.1:{chain.port}"}}', extra=f"calls: [back]\n{LOAD}"),
    })
    chain.recycle_back()  # back starts cold: the run meets its cold starts, front's are warm
    factory = LocalFactory(load_project(chain.root), SystemClock())
    env = factory.project.environment("dev")
    stages = factory.platform(env, factory.project.service("front")).stages

    result = stages.run("load", f"http://127.0.0.1:{chain.port}", 60)

    assert result.passed, result.summary
    summary = Path(result.report).read_text()
    assert "#### Cold starts" in summary and "Chain front → back:" in summary, summary
    data = json.loads((Path(result.report).parent / "result.json").read_text())["cold_starts"]
    front, back = data["functions"]
    assert (front["service"], back["service"], data["chain"]) == ("front", "back", "front -> back")
    # every front request made one back request (a second boundary may split a pair)
    assert front["invocations"] > 0 and abs(back["invocations"] - front["invocations"]) <= 2
    assert front["cold_starts"] == 0 and back["cold_starts"] >= 1
    assert data["chain_cold_starts"] == back["cold_starts"]
    assert f"chain front -> back: {back['cold_starts']})" in result.summary


def live_version(chain: Chain, function: str) -> str:
    """The one version the function's live alias serves after a finished deployment."""
    live = chain.client.alias(function, "live")
    assert live is not None
    (version,) = [v for v, w in live["weights"].items() if w > 0]
    return str(version)


def _counts(metrics: dict[str, Any]) -> tuple[int, int]:
    return int(metrics["invocations"]), int(metrics["cold_starts"])
