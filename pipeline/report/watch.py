"""``pipeline status --watch``: every service of one environment, its weights (read back from
the router), each serving slot's health and its request rate, error rate and p95 over the
last interval, refreshed every interval until Ctrl-C (or ``count`` refreshes).

On a terminal the table is redrawn in place (rich ``Live``); elsewhere (CI logs, a pipe)
one snapshot is printed per interval, each headed by its time, so the output reads as a log.
A service whose platform cannot be read shows why in its row; the others still show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipeline.core.errors import PipelineError
from pipeline.core.model import Measurement, ServiceRef, Slot, SlotHealth, Weights
from pipeline.core.ports import Clock, Platform
from pipeline.core.state import DeploymentState
from pipeline.operations import Context


@dataclass(frozen=True, slots=True)
class SlotView:
    """One slot of one service: its release, health and traffic over the last interval."""

    slot: Slot
    release: str
    health: SlotHealth | None
    traffic: Measurement | None


@dataclass(frozen=True, slots=True)
class ServiceView:
    """One service's row: the latest deployment's phase, the live weights and its slots."""

    service: str
    phase: str
    weights: Weights | None
    slots: tuple[SlotView, ...]
    problem: str = ""


def view_of(state: DeploymentState, platform: Platform, since: float, until: float) -> ServiceView:
    """What ``state``'s service looks like now on ``platform``; a failing read becomes ``problem``."""
    try:
        weights = platform.router.get_weights()
        slots = []
        for slot, release in ((state.new_slot, state.release), (state.new_slot.other(), state.stable)):
            if release is None or (weights is not None and weights.of(slot) == 0 and state.phase.terminal):
                continue  # a slot with no release, or idle after the deployment ended
            health = platform.compute.health(slot, release)
            traffic = platform.metrics.measure(slot, since, until)
            slots.append(SlotView(slot, release.short, health, traffic))
        return ServiceView(state.ref.service, state.phase.value, weights, tuple(slots))
    except PipelineError as exc:
        return ServiceView(state.ref.service, state.phase.value, None, (), exc.message)


def snapshot(
    pairs: Sequence[tuple[DeploymentState, Platform]], now: float, interval: float
) -> list[ServiceView]:
    """Every service's view over the last ``interval`` seconds before ``now``."""
    return [view_of(state, platform, now - interval, now) for state, platform in pairs]


def _health(h: SlotHealth | None) -> Text:
    if h is None:
        return Text("-")
    style = "green" if h.healthy == h.desired and h.desired > 0 else "yellow" if h.healthy else "red"
    return Text(f"{h.healthy}/{h.desired} healthy", style=style)


def _traffic(m: Measurement | None, interval: float) -> str:
    if m is None:
        return "-"
    p95 = f"{m.p95_ms:.0f} ms" if m.p95_ms is not None else "-"
    return f"{m.requests / max(interval, 1e-9):.1f}/s  {m.error_rate * 100:.1f}% 5xx  p95 {p95}"


def table(environment: str, views: Sequence[ServiceView], now: float, interval: float) -> Table:
    """The views as one table (one line per serving slot), titled with the environment and time."""
    stamp = dt.datetime.fromtimestamp(now, tz=dt.UTC).strftime("%H:%M:%S UTC")
    grid = Table("service", "phase", "weights", "slot", "release", "health", f"traffic (last {interval:g}s)",
                 title=f"{environment} at {stamp}", title_justify="left")
    for v in views:
        weights = f"blue {v.weights.blue}% / green {v.weights.green}%" if v.weights else "no route"
        if v.problem:
            grid.add_row(Text(v.service), Text(v.phase), "-", "-", "-", "-", Text(v.problem, style="red"))
            continue
        if not v.slots:
            grid.add_row(Text(v.service), Text(v.phase), weights, "-", "-", "-", "-")
        for i, s in enumerate(v.slots):
            head = (Text(v.service), Text(v.phase), weights) if i == 0 else (Text(""), Text(""), "")
            traffic = _traffic(s.traffic, interval)
            grid.add_row(*head, s.slot.value, Text(s.release), _health(s.health), traffic)
    return grid


def watch(render: Callable[[], Table], clock: Clock, console: Console, *, interval: float,
          count: int = 0) -> int:
    """Show ``render()`` every ``interval`` seconds until Ctrl-C (or ``count`` times, when > 0);
    in place on a terminal, one after another elsewhere. Returns how many were shown."""
    shown = 0
    try:
        if console.is_terminal:
            with Live(render(), console=console, auto_refresh=False) as live:
                shown = 1
                while not count or shown < count:
                    clock.sleep(interval)
                    live.update(render(), refresh=True)
                    shown += 1
        else:
            while not count or shown < count:
                if shown:
                    clock.sleep(interval)
                console.print(render())
                shown += 1
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends
    return shown


def watch_environment(ctx: Context, refs: Sequence[ServiceRef], console: Console, *, interval: float,
                      count: int = 0) -> int:
    """``watch`` the latest deployment of each of ``refs`` (one environment) through ``ctx``'s
    store and platforms; services never deployed there are left out."""
    environment = refs[0].environment if refs else ""

    def render() -> Table:
        now = ctx.clock.now()
        states = [s for s in (ctx.store.load(ref) for ref in refs) if s is not None]
        pairs = [(s, ctx.platform_for(s.ref)) for s in states]
        return table(environment, snapshot(pairs, now, interval), now, interval)

    return watch(render, ctx.clock, console, interval=interval, count=count)
