"""A real step-load ramp against a real orders process whose database has one connection.

Orders runs with ``ORDERS_DB_CONNECTIONS=1`` and ``ORDERS_DB_QUERY_MS=60``: its database
serves at most ~16 queries a second, so as the ramp adds users requests queue for the
connection and latency grows while nothing fails. ``pipeline loadtest`` runs the ramp
(1, 5, 9 users, 3 s a step) through the real orders locustfile and must name the backend
latency as the first limit, put the knee below the top step, and show the steps in the
terminal, the JSON result, summary.md, the job summary and the step outputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli.main import main
from tests.local.support.orders_app import start_orders, stop
from tests.local.test_loadtest_run import locust_children
from tests.support.loadtest_project import write_project

RAMP_LOAD = """\
load:
  locustfile: loadtests/orders.py
  spawn_rate: 20
  user_class: OrdersUser
  ramp: {from: 1, to: 9, step: 4, step_duration: 3s}
  thresholds: {fail_ratio: 0.01, p95_ms: 250}
"""


@pytest.fixture(scope="module")
def limited_orders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    limits = {"ORDERS_DB_CONNECTIONS": "1", "ORDERS_DB_QUERY_MS": "60"}
    proc, url = start_orders(tmp_path_factory.mktemp("orders"), extra_env=limits)
    yield url
    stop(proc)


def test_a_ramp_against_a_connection_limited_database_names_the_backend_and_a_knee_below_the_top(
    limited_orders: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project(tmp_path / "project")
    service = root / "services" / "orders" / "service.yaml"
    text = service.read_text()
    service.write_text(text[: text.index("load:")] + RAMP_LOAD)
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))

    code = main(["--root", str(root), "loadtest", "orders", "--env", "dev", "--target", limited_orders,
                 "--json", "--github-summary", "--github-output"])

    out, err = capsys.readouterr()
    result = json.loads(out)
    ramp = result["ramp"]
    steps = ramp["steps"]
    assert [s["users"] for s in steps] == [1, 5, 9]
    assert all(s["failures"] == 0 and s["requests"] > 0 for s in steps)
    assert sum(s["requests"] for s in steps) == result["figures"]["requests"]  # every request in a step
    assert ramp["first_limit"]["kind"] == "backend_latency"
    assert ramp["first_limit"]["evidence"].startswith("p95 rose ")
    assert ramp["knee_users"] != 9 and not steps[-1]["passed"]
    assert steps[-1]["p95_ms"] > steps[0]["p95_ms"]
    assert code == (0 if ramp["knee_users"] else 6)  # the gate is the knee: it must exist

    assert "ramp steps" in err and "first limit: latency growing in a backend" in err
    job_summary = summary.read_text()
    assert "first limit: latency growing in a backend (requests queue behind the service)" in job_summary
    assert job_summary == Path(result["reports"]["markdown"]).read_text() + "\n"
    assert "first_limit=backend_latency\n" in outputs.read_text()
    assert locust_children() == []
