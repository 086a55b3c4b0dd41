"""`pipeline status --watch`: a live table of one environment's services (weights read back
from the router, each serving slot's health and traffic over the last interval), redrawn
every interval until Ctrl-C; not on a terminal, one table per interval."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from rich.table import Table

from pipeline.core.model import Measurement, Slot
from pipeline.operations import deploy
from pipeline.report.watch import snapshot, table, watch, watch_environment
from pipeline.testing import FakeClock, release
from tests.unit.support.engine import CANARY, REF, World
from tests.unit.support.fake_cli import code, install


def rendered(grid: object, width: int = 160) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(grid)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_the_table_shows_live_weights_each_slots_health_and_its_traffic() -> None:
    world = World()
    deploy(world.ctx(), REF, release("v1"), CANARY)
    world.platform.metrics.per_slot[Slot.BLUE] = Measurement(requests=50, errors=5, p95_ms=42.0)
    state = world.store.load(REF)
    assert state is not None
    views = snapshot([(state, world.platform.ports())], world.clock.now(), 5.0)
    text = rendered(table("staging", views, world.clock.now(), 5.0))
    assert "staging at" in text and "orders" in text and "succeeded" in text
    assert "blue 100% / green 0%" in text
    assert re.search(r"\b(\d+)/\1 healthy", text)  # every replica of the serving slot
    assert "10.0/s" in text and "10.0% 5xx" in text and "p95 42 ms" in text  # 50 requests in 5 s
    assert "v1 (" in text


def test_a_service_whose_platform_fails_shows_why_and_the_others_still_show() -> None:
    world = World()
    deploy(world.ctx(), REF, release("v1"), CANARY)
    world.platform.metrics.fail = "throttled"
    state = world.store.load(REF)
    assert state is not None
    views = snapshot([(state, world.platform.ports())], world.clock.now(), 5.0)
    assert views[0].problem == "metrics unavailable: throttled"
    assert "metrics unavailable: throttled" in rendered(table("staging", views, world.clock.now(), 5.0))


def test_not_on_a_terminal_one_table_is_printed_per_interval_on_the_clock() -> None:
    world = World()
    deploy(world.ctx(), REF, release("v1"), CANARY)
    start = world.clock.now()
    console = Console(file=io.StringIO(), width=160, color_system=None)
    shown = watch_environment(world.ctx(), [REF], console, interval=5.0, count=3)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert shown == 3 and out.count("staging at") == 3
    assert world.clock.now() - start == pytest.approx(10.0)  # two waits between three tables


def test_ctrl_c_ends_the_watch_quietly() -> None:
    class Interrupting(FakeClock):
        def sleep(self, seconds: float) -> None:
            raise KeyboardInterrupt

    console = Console(file=io.StringIO(), width=100, color_system=None)
    shown = watch(lambda: table("dev", [], 0.0, 1.0), Interrupting(), console, interval=1.0)
    assert shown == 1


def test_on_a_terminal_the_table_is_redrawn_in_place() -> None:
    console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system=None)
    frames = iter(range(100))
    def render() -> Table:
        return table(f"env{next(frames)}", [], 0.0, 1.0)

    shown = watch(render, FakeClock(), console, interval=1.0, count=3)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert shown == 3 and "env2 at" in out
    assert "\x1b[" in out  # cursor movements: one live region, not three printed tables


def test_the_cli_watches_an_environment_and_refuses_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = install(monkeypatch)
    assert code("deploy", "orders", "--env", "dev", "--ref", "v1")[0] == 0
    exit_code, out, _err = code("status", "--watch", "--env", "dev", "--interval", "2", "--count", "2",
                                COLUMNS="200")
    assert exit_code == 0 and out.count("dev at") == 2 and "orders" in out and "blue 100% / green 0%" in out
    assert fakes.clock.slept >= 2.0
    exit_code, _out, err = code("status", "--watch")
    assert exit_code != 0 and "needs --env" in err and "Traceback" not in err
