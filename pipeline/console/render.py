"""Rendering: progress on stderr (rich), data on stdout (plain text or JSON).

No console here interprets rich markup: text that comes from data (a deployment's reason,
a response body quoted by a failed smoke check, an actor, a locust request name) may
contain ``[/x]`` or ``[bold]`` and must print as it is, never crash the command or restyle
the line. Styles come from ``Text`` objects (``styled``), never from markup in strings.

Both consoles honour ``NO_COLOR`` (https://no-color.org): when it is set to anything,
they print no colour and no other text style, on a terminal too. ``FORCE_COLOR`` forces
colour into a pipe unless ``NO_COLOR`` is set.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from pipeline.console.layout import PHASE_STYLE, history_lines, status_lines, when
from pipeline.console.progress import ProgressView, progress_interval
from pipeline.core.errors import PipelineError
from pipeline.core.model import Weights
from pipeline.core.ports import Record
from pipeline.core.state import DeploymentState


class _PipeConsole(Console):
    """A console that never wraps what it prints into a pipe or a file (CI logs, captured
    output): a wrapped line breaks the paths, ids and messages that tools and people search
    for. In a terminal, stderr's messages are wrapped to its width as usual."""

    def print(self, *objects: Any, soft_wrap: bool | None = None, **options: Any) -> None:
        if soft_wrap is None and not self.is_terminal:
            soft_wrap = True
        super().print(*objects, soft_wrap=soft_wrap, **options)


def make_console(*, stderr: bool, environ: Mapping[str, str] | None = None, **options: Any) -> Console:
    """A console for stderr (progress) or stdout (data, never wrapped by rich) that prints
    strings as they are (no markup); with ``NO_COLOR`` set it emits no styles at all."""
    env = os.environ if environ is None else environ
    plain = env.get("NO_COLOR", "") != ""
    return _PipeConsole(
        stderr=stderr,
        markup=False,
        emoji=False,  # ":warning:" in a reason stays text
        highlight=False,
        soft_wrap=not stderr,
        color_system=None if plain else "auto",
        no_color=plain,
        **options,
    )


err = make_console(stderr=True)
out = make_console(stderr=False)


def styled(label: str, style: str, rest: str = "") -> Text:
    """``label`` in ``style`` followed by ``rest`` as it is: ``styled("succeeded", "green",
    f": {release} serves {ref}")``. Nothing in either is read as markup."""
    return Text.assemble((label, style), rest)


def print_error(exc: PipelineError, console: Console | None = None) -> None:
    """The one rendering of a ``PipelineError`` for people: ``error: what: why`` and, when
    there is one, ``  hint: what to do`` (no traceback)."""
    console = err if console is None else console
    console.print(styled("error", "bold red", f": {exc.message}"), markup=False, soft_wrap=True)
    if exc.hint:
        console.print(Text.assemble("  ", ("hint", "dim"), f": {exc.hint}"), markup=False, soft_wrap=True)


def bar(weights: Weights | None, width: int = 20) -> Text:
    if weights is None:
        return Text("no traffic")
    green = round(weights.green * width / 100)
    return Text.assemble(
        ("█" * (width - green), "blue"),
        ("█" * green, "green"),
        f" blue {weights.blue}% / green {weights.green}%",
    )


class ConsoleSink:
    """The engine's EventSink (and WaitObserver) for humans: one line per note, a weights
    bar when they change, and the progress of every wait (see ``progress``).

    ``interval`` defaults to ``PIPELINE_PROGRESS_INTERVAL``; ``live`` (redraw one line)
    defaults to whether the console is a terminal.
    """

    def __init__(
        self, console: Console | None = None, *, interval: float | None = None, live: bool | None = None
    ) -> None:
        self.console = err if console is None else console
        self._weights: Weights | None = None
        self.progress = ProgressView(
            self.console,
            interval=progress_interval(os.environ) if interval is None else interval,
            live=self.console.is_terminal if live is None else live,
        )

    def emit(self, state: DeploymentState, notes: Sequence[str]) -> None:
        self.progress.update(state)
        style = PHASE_STYLE.get(state.phase.value, "")
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        for note in notes:
            line = Text.assemble((stamp, "dim"), " ", (str(state.ref), style), " ", note)
            self.console.print(line, soft_wrap=not self.console.is_terminal)  # a log wraps for itself
        if state.weights != self._weights and state.weights is not None:
            self._weights = state.weights
            self.console.print(Text.assemble("         ", bar(state.weights)), markup=False)
        if state.phase.terminal:
            self.progress.end()

    def waiting(self, state: DeploymentState, now: float) -> None:
        self.progress.waiting(state, now)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def state_summary(state: DeploymentState) -> dict[str, Any]:
    return {
        "deployment": state.id,
        "service": state.ref.service,
        "environment": state.ref.environment,
        "phase": state.phase.value,
        "release": state.release.to_dict(),
        "stable": state.stable.to_dict() if state.stable else None,
        "new_slot": state.new_slot.value,
        "weights": state.weights.to_dict() if state.weights else None,
        "step": f"{min(state.step_index + 1, len(state.steps))}/{len(state.steps)}",
        "waiting_for": type(state.pending).__name__ if state.pending else None,
        "reason": state.reason,
        "actor": state.actor,
        "started": when(state.created_at),
        "updated": when(state.updated_at),
    }


def status_table(states: Iterable[DeploymentState]) -> Table:
    columns = ("service", "env", "phase", "release", "new", "blue/green", "step", "updated", "reason")
    table = Table(*columns)
    for s in states:
        style = PHASE_STYLE.get(s.phase.value, "cyan")
        table.add_row(
            Text(s.ref.service),
            Text(s.ref.environment),
            Text(s.phase.value, style=style),
            Text(s.release.version),
            s.new_slot.value,
            f"{s.weights.blue}/{s.weights.green}" if s.weights else "-",
            f"{min(s.step_index + 1, len(s.steps))}/{len(s.steps)}",
            when(s.updated_at)[11:],
            Text(s.reason),  # data: printed as it is whatever the console's markup setting
        )
    return table


def print_status(states: Sequence[DeploymentState], console: Console = out) -> None:
    """``pipeline status``: the compact lines of ``layout.status_lines`` at the console's width."""
    for line in status_lines(states, console.width):
        console.print(line)


def print_history(records: Iterable[Record], console: Console = out) -> None:
    """``pipeline history``: the compact event log of ``layout.history_lines``."""
    for line in history_lines(records, console.width):
        console.print(line)


def print_wide(table: Table, console: Console = out) -> None:
    """``--wide``: the table at its natural width, however narrow the terminal, so no cell
    is shortened (the terminal wraps long lines instead)."""
    natural = Measurement.get(console, console.options.update(width=10_000), table).maximum
    if natural <= console.width:
        console.print(table)
        return
    wide = Console(
        file=console.file,
        markup=False,
        emoji=False,
        width=natural,
        force_terminal=console.is_terminal,
        color_system=console.color_system,  # type: ignore[arg-type]  # a name it accepts back
        no_color=console.no_color,
        highlight=False,
    )
    wide.print(table)


def record_dict(r: Record) -> dict[str, Any]:
    return {
        "ts": r.ts,
        "time": when(r.ts),
        "kind": r.kind,
        "deployment": r.deployment,
        "actor": r.actor,
        "action": r.action,
        "phase": r.phase,
        "version": r.version,
        "digest": r.digest,
        "detail": r.detail,
        "trace_id": r.data.get("trace_id") or None,  # the run's trace (pipeline.observe)
    }


def history_table(records: Iterable[Record]) -> Table:
    table = Table("time (UTC)", "who", "kind", "what", "version", "digest", "why")
    for r in records:
        cells = (r.actor, r.kind, r.action, r.version, r.digest[7:19], r.detail)
        table.add_row(when(r.ts), *(Text(cell) for cell in cells))  # data, never markup
    return table
