"""``pipeline status`` and ``pipeline history`` in an 80-column terminal and in a pipe.

The real CLI (click's runner, so stdout is a pipe) over the example project, reading a
real SQLite store that the engine wrote (``support.deployments``). Nothing an operator
needs may be cut: phase, release with digest prefix and reason must appear whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.console.layout import when
from pipeline.core.ports import Record
from pipeline.core.state import DeploymentState
from pipeline.local.state.sqlite_store import open_sqlite
from pipeline.testing import FakeClock
from tests.unit.support.deployments import CATALOG, ORDERS, seed
from tests.unit.support.project import REPO_ROOT


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """PIPELINE_LOCAL_HOME with a state store holding real deployments of orders and catalog."""
    monkeypatch.setenv("PIPELINE_LOCAL_HOME", str(tmp_path))
    seed(tmp_path / "state.db")
    yield tmp_path


def stored(home: Path) -> tuple[dict[str, DeploymentState], list[Record]]:
    store, _ = open_sqlite(home / "state.db", FakeClock())
    states = {ref.service: store.load(ref) for ref in (ORDERS, CATALOG)}
    assert all(states.values())
    return {k: v for k, v in states.items() if v is not None}, store.history(CATALOG)


def pipeline(*args: str, columns: int = 80) -> str:
    result = CliRunner().invoke(
        cli,
        ["--root", str(REPO_ROOT), *args],
        env={"COLUMNS": str(columns)},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def flat(text: str) -> str:
    """Whitespace-normalised text: a wrapped reason reads as the original sentence."""
    return " ".join(text.split())


def digest12(state: DeploymentState) -> str:
    return state.release.digest.split(":", 1)[1][:12]


@pytest.mark.parametrize("columns", [80, 60])
def test_status_keeps_phase_release_and_reason_whole_in_a_narrow_pipe(home: Path, columns: int) -> None:
    states, _ = stored(home)
    text = pipeline("status", columns=columns)
    lines = text.splitlines()
    assert all(len(line) <= columns for line in lines), text
    assert "…" not in text
    for service, state in states.items():
        block = flat(text[text.index(service) :])
        release = f"{state.release.version} {digest12(state)}"
        assert block.startswith(f"{service} dev {state.phase.value} {release}")
        assert state.reason in block
    assert states["catalog"].phase.value == "rolled_back"
    assert "only 1 requests reached the new release in the window (need 10)" in states["catalog"].reason


def test_status_says_when_who_and_why_under_each_deployment(home: Path) -> None:
    lines = pipeline("status").splitlines()
    orders = next(i for i, line in enumerate(lines) if line.startswith("orders"))
    when_who_why = r" {4}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, started by alice: promoted"
    assert re.fullmatch(when_who_why, lines[orders + 1])
    assert "blue 0/green 100" in lines[orders] and "step 7/7" in lines[orders]


def test_history_is_an_event_log_with_each_reason_whole_at_80_columns(home: Path) -> None:
    _, records = stored(home)
    text = pipeline("history", "catalog", "--env", "dev")
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    assert "…" not in text
    headers = [line for line in lines if not line.startswith(" ")]
    assert len(headers) == len(records)
    for line, record in zip(headers, records, strict=True):
        release = [record.version, record.digest[7:19]]
        assert line.split() == [*when(record.ts).split(), record.actor, record.action, *release]
    outcome = records[-1]
    assert outcome.action == "deployment.rolled_back"
    assert flat(text).endswith(flat(outcome.detail))
    assert flat(outcome.detail) in flat(text) and len(outcome.detail) > 76  # it had to wrap


def test_history_wide_is_the_table_and_json_is_unchanged(home: Path) -> None:
    _, records = stored(home)
    wide = pipeline("history", "catalog", "--env", "dev", "--wide")
    assert "time (UTC)" in wide and "…" not in wide
    assert any(records[-1].detail in line for line in wide.splitlines())
    data = json.loads(pipeline("history", "catalog", "--env", "dev", "--json"))
    assert [d["action"] for d in data] == [r.action for r in records]
    fields = {"ts", "time", "kind", "deployment", "actor", "action", "phase", "version", "digest", "detail",
              "trace_id"}  # trace_id: the run's trace, null when the run was not traced
    assert set(data[0]) == fields


def test_status_wide_shows_every_cell_whole_even_at_80_columns(home: Path) -> None:
    states, _ = stored(home)
    wide = pipeline("status", "--wide")
    assert "…" not in wide
    row = next(line for line in wide.splitlines() if "catalog" in line)
    assert "rolled_back" in row and states["catalog"].reason in row


def test_status_json_is_unchanged(home: Path) -> None:
    data = json.loads(pipeline("status", "--json"))
    assert [(d["service"], d["phase"]) for d in data] == [("catalog", "rolled_back"), ("orders", "succeeded")]
    assert {"deployment", "release", "reason", "waiting_for", "weights", "step"} <= set(data[0])
