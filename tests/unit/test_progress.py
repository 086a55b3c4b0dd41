"""Progress of waits on stderr: plain lines at an interval of the engine's clock in a CI
log, a redrawn line on a terminal, live load figures, and ``NO_COLOR``.

The engine runs over the in-memory fakes with a fake clock, so a 60-second pause takes no
time and the lines it produces depend only on that clock. Consoles are real rich consoles
writing to a StringIO at 80 columns.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Sequence

import pytest
from rich.console import Console

from pipeline.console.progress import ProgressView, load_progress, progress_interval
from pipeline.console.render import ConsoleSink, make_console
from pipeline.core.errors import UsageError
from pipeline.core.model import ServiceRef, Slot
from pipeline.core.plan import Strategy
from pipeline.core.ports import EventSink
from pipeline.core.state import DeploymentState, Hold, Phase, RunStage, Timeouts
from pipeline.core.steps import Pause, SetWeight
from pipeline.loadtest.live import LiveLoad, current_watcher
from pipeline.operations import Context, deploy, plan
from pipeline.testing import FakeClock, FakePlatform, InMemoryStore, release
from tests.unit.support.engine import CANARY, REF
from tests.unit.support.project import REPO_ROOT

ESC = "\x1b["


def console(*, terminal: bool = False, environ: dict[str, str] | None = None) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    made = make_console(stderr=True, environ=environ or {}, file=buffer, width=80, force_terminal=terminal)
    return made, buffer


def run_deployments(sink: EventSink, strategy: Strategy = CANARY) -> FakeClock:
    """v1 (no steps but the stages) then v2 through ``strategy``, on a fake clock."""
    clock = FakeClock()
    store = InMemoryStore(clock)
    platform = FakePlatform.create()
    ctx = Context(
        store=store,
        locks=store,
        clock=clock,
        sink=sink,
        platform_for=lambda ref: platform.ports(),
        actor="alice",
        owner="alice@host:1",
    )
    deploy(ctx, REF, release("v1"), strategy)
    deploy(ctx, REF, release("v2"), strategy)
    return clock


def lines_about(text: str, what: str) -> list[str]:
    """The part after ``what`` of every line that mentions it."""
    return [line.split(what, 1)[1] for line in text.splitlines() if what in line]


def test_without_a_terminal_a_pause_prints_a_line_when_it_starts_and_at_each_interval() -> None:
    out, buffer = console()
    run_deployments(ConsoleSink(out, interval=10))
    text = buffer.getvalue()
    every_10s = ["1m00s left", "50s left", "40s left", "30s left", "20s left", "10s left"]
    assert lines_about(text, "step 3/7: pause 60s: ") == every_10s
    assert ESC not in text and "\r" not in text  # no colour, no redraw in a log


def test_the_interval_sets_how_often_a_line_is_printed() -> None:
    out, buffer = console()
    run_deployments(ConsoleSink(out, interval=25))
    assert lines_about(buffer.getvalue(), "step 3/7: pause 60s: ") == ["1m00s left", "35s left", "10s left"]


def test_a_human_gate_says_what_to_run_once_and_how_long_it_has_waited() -> None:
    out, buffer = console()
    gate = Strategy(
        steps=(SetWeight(50), Pause(None)),
        analysis=CANARY.analysis,
        timeouts=Timeouts(ready=60, verify=10, stage=60, hold=30, poll=1),
    )
    run_deployments(ConsoleSink(out, interval=10), gate)  # nobody continues: rolls back at 30 s
    text = buffer.getvalue()
    hint = (
        "run `pipeline continue orders --env staging` to go on "
        "or `pipeline abort orders --env staging` to stop"
    )
    assert " ".join(text.split()).count(hint) == 1
    waits = lines_about(text, "step 2/2: waiting for a person")
    assert waits[:3] == [
        ", gives up in 30s",
        ": waiting 10s, gives up in 20s",
        ": waiting 20s, gives up in 10s",
    ]
    assert "nobody continued within 30s" in text


class WaitRecorder:
    """An EventSink that is also a WaitObserver: records what the engine says it waits for."""

    def __init__(self) -> None:
        self.waits: list[tuple[str, float]] = []

    def emit(self, state: DeploymentState, notes: Sequence[str]) -> None:
        return None

    def waiting(self, state: DeploymentState, now: float) -> None:
        self.waits.append((type(state.pending).__name__, now))


def test_the_engine_tells_a_wait_observer_before_each_wait_slice_and_each_stage() -> None:
    recorder = WaitRecorder()
    run_deployments(recorder)
    kinds = [kind for kind, _ in recorder.waits]
    assert kinds.count("RunStage") == 2  # the test stage of v1 and of v2, before each blocks
    holds = [now for kind, now in recorder.waits if kind == "Hold"]
    assert len(holds) == 120  # two 60 s pauses in slices of poll = 1 s
    assert holds[1] - holds[0] == CANARY.timeouts.poll


def test_progress_interval_comes_from_the_environment_and_refuses_nonsense() -> None:
    assert progress_interval({}) == 10.0
    assert progress_interval({"PIPELINE_PROGRESS_INTERVAL": "15"}) == 15.0
    for bad in ("0", "-3", "soon"):
        with pytest.raises(UsageError, match="PIPELINE_PROGRESS_INTERVAL"):
            progress_interval({"PIPELINE_PROGRESS_INTERVAL": bad})


def test_on_a_terminal_the_wait_is_one_redrawn_line_with_a_countdown() -> None:
    out, buffer = console(terminal=True)
    run_deployments(ConsoleSink(out, interval=10))
    text = buffer.getvalue()
    assert "\r" in text and f"{ESC}2K" in text  # redrawn in place, not appended
    assert "step 3/7: pause 60s" in text and "left" in text
    assert lines_about(text, "step 3/7: pause 60s: ") == []  # no plain lines on a terminal
    assert text.rstrip().endswith("deployment succeeded")  # the live line was removed at the end


def test_a_load_stage_reports_live_requests_failures_and_rps_at_the_interval() -> None:
    out, buffer = console()
    view = ProgressView(out, interval=10, live=False)
    state = _state().evolve(pending=RunStage("load", Slot.GREEN), deadline=1_700_000_900.0)
    assert current_watcher() is None
    view.waiting(state, 1_700_000_000.0)
    watcher = current_watcher()
    assert watcher is not None
    for second in range(1, 31):
        watcher(LiveLoad("orders", second, 30.0, requests=40 * second, failures=second // 10, rps=40.0))
    view.update(state.evolve(pending=Hold(None)))  # the stage finished
    assert current_watcher() is None
    loads = lines_about(buffer.getvalue(), "orders@staging load: ")
    assert loads == [
        "400 requests, 1 failed (0.2%), 40.0 rps, 20s left",
        "800 requests, 2 failed (0.2%), 40.0 rps, 10s left",
        "1200 requests, 3 failed (0.2%), 40.0 rps, 0s left",
    ]


def test_on_a_terminal_the_load_figures_and_the_countdown_fit_80_columns() -> None:
    out, buffer = console(terminal=True)
    view = ProgressView(out, interval=10, live=True)
    view.waiting(_state().evolve(pending=RunStage("load", Slot.GREEN)), 1_700_000_000.0)
    watcher = current_watcher()
    assert watcher is not None
    watcher(LiveLoad("orders", 12.0, 30.0, requests=1200, failures=3, rps=40.2))
    view.end()  # the last frame is drawn, then the line is removed
    frames = [part for part in buffer.getvalue().replace("\n", "\r").split("\r") if "load: " in part]
    last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", frames[-1])
    assert "load: 1200 req, 3 failed, 40 rps" in last and re.search(r" 1?\d+s left$", last.rstrip())
    assert len(last.rstrip()) <= 80


def test_a_standalone_load_test_shows_its_figures_while_the_block_runs() -> None:
    out, buffer = console()
    with load_progress(out, "orders", interval=5, live=False):
        watcher = current_watcher()
        assert watcher is not None
        for second in range(1, 13):
            watcher(LiveLoad("orders", second, 10.0, requests=10 * second, failures=0, rps=10.0))
    assert current_watcher() is None
    assert lines_about(buffer.getvalue(), "orders load: ") == [
        "50 requests, 0 failed, 10.0 rps, 5s left",
        "100 requests, 0 failed, 10.0 rps, 0s left",
    ]


def test_no_color_removes_every_escape_code_even_on_a_terminal() -> None:
    styled, styled_buffer = console(terminal=True)
    plain, plain_buffer = console(terminal=True, environ={"NO_COLOR": "1"})
    for target in (styled, plain):
        sink = ConsoleSink(target, interval=10, live=False)
        state = _state()
        sink.emit(state.evolve(phase=Phase.ROLLED_BACK), ["rolled back: analysis failed"])
    assert ESC in styled_buffer.getvalue()
    assert ESC not in plain_buffer.getvalue()
    assert "rolled back: analysis failed" in plain_buffer.getvalue()


def test_the_cli_honours_no_color_even_when_colour_is_forced() -> None:
    def validate(**env: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline.cli.main", "--root", str(REPO_ROOT), "validate"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, "FORCE_COLOR": "1", **env},
        )
        return proc.stderr

    assert ESC in validate()
    quiet = validate(NO_COLOR="1")
    assert ESC not in quiet and quiet.startswith("ok: ")


def _state() -> DeploymentState:
    """A pending deployment of v2 of orders in staging."""
    clock = FakeClock()
    store = InMemoryStore(clock)
    ctx = Context(
        store=store,
        locks=store,
        clock=clock,
        sink=ConsoleSink(Console(file=io.StringIO()), interval=10, live=False),
        platform_for=lambda ref: FakePlatform.create().ports(),
        actor="alice",
        owner="alice@host:1",
    )
    return plan(ctx, ServiceRef("orders", "staging"), release("v2"), CANARY)
