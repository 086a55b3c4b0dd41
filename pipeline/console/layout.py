"""Compact text for ``status`` and ``history`` that fits a narrow terminal and a pipe.

Tables shorten cells to fit ("succee…"), which hides exactly what an operator needs. Here
each deployment or record is one line of whole fields, separated by two spaces; a line
that would pass the width breaks *between* fields, and the reason follows on its own lines,
wrapped at word boundaries and indented. A word is never cut: one longer than the width
(a URL, a digest) runs past it. ``--wide`` keeps the tables; ``--json`` the data.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterable, Sequence

from rich.text import Text

from pipeline.console.waits import Wait, describe_wait
from pipeline.core.ports import Record
from pipeline.core.state import DeploymentState

INDENT = 4
GAP = "  "

PHASE_STYLE = {
    "succeeded": "bold green",
    "rolled_back": "bold yellow",
    "aborted": "bold yellow",
    "failed": "bold red",
    "rolling_back": "yellow",
}


def when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def fit(fields: Sequence[Text], width: int, indent: int = INDENT) -> list[Text]:
    """Join ``fields`` with two spaces into lines of at most ``width`` columns, breaking
    only between fields; continuation lines are indented."""
    lines: list[Text] = []
    line = Text()
    for field in fields:
        if line.plain.strip() and len(line.plain) + len(GAP) + len(field.plain) > width:
            lines.append(line)
            line = Text(" " * indent)
        elif line.plain.strip():
            line.append(GAP)
        line.append_text(field)
    lines.append(line)
    for each in lines:
        each.rstrip()
    return lines


def wrapped(text: str, width: int, indent: int = INDENT, style: str = "") -> list[Text]:
    """``text`` wrapped at word boundaries to ``width``, every line indented; words stay whole."""
    pad = " " * indent
    lines = textwrap.wrap(
        text,
        width=max(width, indent + 20),
        initial_indent=pad,
        subsequent_indent=pad,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [Text(line, style=style) for line in lines]


def release_text(version: str, digest: str) -> str:
    """``v2 1a2b3c4d5e6f``: the version and the digest's first twelve hex digits."""
    prefix = digest.split(":", 1)[-1][:12]
    return f"{version} {prefix}".strip() if prefix and prefix != version else version


def status_lines(states: Sequence[DeploymentState], width: int) -> list[Text]:
    """One block per deployment: a line with service, environment, phase, release, weights
    and step; then when it last changed, who started it and why it is in its phase; then,
    while it runs, what it waits for."""
    pads = _widths([(s.ref.service, s.ref.environment, s.phase.value) for s in states])
    lines: list[Text] = []
    for s in states:
        weights = f"blue {s.weights.blue}/green {s.weights.green}" if s.weights else "no traffic"
        fields = [
            Text(s.ref.service.ljust(pads[0]), style="bold"),
            Text(s.ref.environment.ljust(pads[1])),
            Text(s.phase.value.ljust(pads[2]), style=PHASE_STYLE.get(s.phase.value, "cyan")),
            Text(release_text(s.release.version, s.release.digest)),
            Text(weights),
            Text(f"step {min(s.step_index + 1, len(s.steps))}/{len(s.steps)}"),
        ]
        lines.extend(fit(fields, width))
        changed = f"{when(s.updated_at)} UTC, started by {s.actor}"
        lines.extend(wrapped(f"{changed}: {s.reason}" if s.reason else changed, width))
        wait = describe_wait(s)
        if wait is not None:
            lines.extend(wrapped(f"waits: {wait.what}{_times(wait)}", width, style="cyan"))
            if wait.hint:
                lines.extend(wrapped(wait.hint, width, style="cyan"))
    return lines


def _times(wait: Wait) -> str:
    if wait.until is not None:
        return f" until {when(wait.until)} UTC"
    if wait.deadline is not None:
        return f", gives up at {when(wait.deadline)} UTC"
    return ""


def history_lines(records: Iterable[Record], width: int) -> list[Text]:
    """The compact event log: one line per record (time, actor, action, release), then
    the record's detail wrapped and indented."""
    records = list(records)
    pads = _widths([(r.actor, r.action) for r in records])
    lines: list[Text] = []
    for r in records:
        fields = [
            Text(when(r.ts), style="dim"),
            Text(r.actor.ljust(pads[0])),
            Text(r.action.ljust(pads[1]), style=_action_style(r)),
            Text(release_text(r.version, r.digest)),
        ]
        lines.extend(fit(fields, width))
        if r.detail:
            lines.extend(wrapped(r.detail, width))
        if r.action.startswith("deployment.") and r.data.get("trace_id"):
            lines.extend(wrapped(f"trace {r.data['trace_id']}", width))  # `pipeline trace show` takes it
    return lines


def _action_style(r: Record) -> str:
    if r.action.startswith("deployment."):
        return PHASE_STYLE.get(r.phase, "bold")
    if r.action in ("error", "rejected"):
        return "red"
    return "magenta" if r.kind == "audit" else ""


def _widths(rows: Sequence[tuple[str, ...]], cap: int = 24) -> list[int]:
    """Column widths for alignment: the longest value, at most ``cap`` (longer ones stay whole)."""
    if not rows:
        return []
    return [min(cap, max(len(row[i]) for row in rows)) for i in range(len(rows[0]))]
