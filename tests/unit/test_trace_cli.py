"""``pipeline trace`` over a span store on disk: listing, filters, the waterfall, JSON, and
data that looks like terminal markup printed as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.local.spans import SpanRecord, SpanStore

Capture = pytest.CaptureFixture[str]
TRACE = "ab" * 16
T0 = 1_700_000_000.0


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pipeline.yaml").write_text("project: shop\n")
    monkeypatch.delenv("PIPELINE_LOCAL_HOME", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    store = SpanStore.of(root / ".pipeline")
    store.add([
        SpanRecord(TRACE, "1" * 16, None, "GET /orders*", "router", T0, T0 + 0.040,
                   {"http.response.status_code": 502, "pipeline.slot": "green", "pipeline.release": "2.0.0"},
                   "error"),
        SpanRecord(TRACE, "2" * 16, "1" * 16, "[bold red]db[/bold red]", "orders", T0 + 0.001, T0 + 0.031,
                   {"db.operation.name": "SELECT"}, "ok"),
    ])
    return root


def run(project: Path, capsys: Capture, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(project), "trace", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_listing_finds_the_trace_by_its_filters(project: Path, capsys: Capture) -> None:
    code, out, _ = run(project, capsys, "--slot", "green", "--status", "5xx", "--json")
    assert code == 0
    [found] = json.loads(out)["traces"]
    assert (found["trace_id"], found["status"], found["spans"]) == (TRACE, "error", 2)
    assert found["release"] == "2.0.0"
    assert run(project, capsys, "--slot", "blue", "--json")[1].strip() == '{\n  "traces": []\n}'
    code, out, _ = run(project, capsys, "--min-ms", "10")
    assert code == 0 and TRACE in out and "router: GET /orders*" in out


def test_the_waterfall_prints_span_names_as_they_are(project: Path, capsys: Capture) -> None:
    code, out, _ = run(project, capsys, "show", TRACE.upper())
    assert code == 0
    lines = out.splitlines()
    assert any(line.startswith("  orders: [bold red]db[/bold red]") for line in lines)  # under router
    assert "40.0 ms" in out and "502" in out and "slot green" in out


def test_bad_input_is_a_usage_error_not_a_traceback(project: Path, capsys: Capture) -> None:
    code, _, err = run(project, capsys, "show", "not-a-trace")
    assert code == 2 and "32 hex digits" in err
    code, _, err = run(project, capsys, "--since", "yesterday")
    assert code == 2 and "--since 'yesterday'" in err
    code, _, err = run(project, capsys, "show", "0" * 32)
    assert code == 3 and "no trace" in err


def test_without_a_span_store_it_says_how_to_get_one(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_LOCAL_HOME", raising=False)
    (tmp_path / "pipeline.yaml").write_text("project: shop\n")
    code, _, err = run(tmp_path, capsys)
    assert code == 3 and "pipeline local up" in err
    assert not (tmp_path / ".pipeline" / "spans.db").exists()
