"""Rendering: progress on stderr (rich), data on stdout (plain text or JSON)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from pipeline.core.model import Weights
from pipeline.core.ports import Record
from pipeline.core.state import DeploymentState

err = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)

PHASE_STYLE = {
    "succeeded": "bold green",
    "rolled_back": "bold yellow",
    "aborted": "bold yellow",
    "failed": "bold red",
    "rolling_back": "yellow",
}


def when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def bar(weights: Weights | None, width: int = 20) -> str:
    if weights is None:
        return "no traffic"
    green = round(weights.green * width / 100)
    blocks = f"[blue]{'█' * (width - green)}[/][green]{'█' * green}[/]"
    return f"{blocks} blue {weights.blue}% / green {weights.green}%"


class ConsoleSink:
    """The engine's EventSink for humans: one line per note, a weights bar when they change."""

    def __init__(self, console: Console = err) -> None:
        self.console = console
        self._weights: Weights | None = None

    def emit(self, state: DeploymentState, notes: Sequence[str]) -> None:
        style = PHASE_STYLE.get(state.phase.value, "")
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        for note in notes:
            self.console.print(f"[dim]{stamp}[/] [{style or 'default'}]{state.ref}[/] {note}")
        if state.weights != self._weights and state.weights is not None:
            self._weights = state.weights
            self.console.print(f"         {bar(state.weights)}")


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
            s.ref.service,
            s.ref.environment,
            f"[{style}]{s.phase.value}[/]",
            s.release.version,
            s.new_slot.value,
            f"{s.weights.blue}/{s.weights.green}" if s.weights else "-",
            f"{min(s.step_index + 1, len(s.steps))}/{len(s.steps)}",
            when(s.updated_at)[11:],
            s.reason,
        )
    return table


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
    }


def history_table(records: Iterable[Record]) -> Table:
    table = Table("time (UTC)", "who", "kind", "what", "version", "digest", "why")
    for r in records:
        table.add_row(when(r.ts), r.actor, r.kind, r.action, r.version, r.digest[7:19], r.detail)
    return table
