"""The terminal's "where the time goes" of a load run: one table per release group.

Hop names come from spans (data): every cell is a ``Text``, never read as markup.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from pipeline.console.render import styled
from pipeline.core.hops import HopChange
from pipeline.loadtest.hops import TABLE_ROWS, HopReport, ReleaseGroup


def hop_tables(report: HopReport) -> list[Table]:
    """A table per release group, the stable one first; grown hops marked in red."""
    return [_table(group) for group in report.groups]


def _table(group: ReleaseGroup) -> Table:
    p = group.profile
    kind = "stable" if group.stable else "vs stable"
    title = Text(f"where the time goes: {group.label} ({kind}), {p.traces} traces, p95 {p.p95_ms:.1f} ms")
    table = Table(title=title, title_justify="left")
    for column in ("hop", "p95 ms", "self p95 ms", "share of p95", "errors"):
        table.add_column(column, justify="left" if column == "hop" else "right")
    if not group.stable:
        table.add_column("vs stable")
    changes = {c.hop: c for c in group.changes}
    flagged = {c.hop for c in group.flagged}
    for i, h in enumerate(p.hops):
        if i >= TABLE_ROWS and h.hop not in flagged:
            continue
        cells = [Text(h.hop), Text(f"{h.p95_ms:.1f}"), Text(f"{h.self_p95_ms:.1f}"), Text(f"{h.share:.0%}"),
                 Text(f"{h.error_rate:.1%}")]
        if not group.stable:
            cells.append(_versus(changes.get(h.hop)))
        table.add_row(*cells)
    return table


def _versus(change: HopChange | None) -> Text:
    if change is None:
        return Text("")
    if change.stable is None:
        return styled("new hop, grew", "bold red") if change.flagged else Text("new hop")
    text = f"{round(change.growth_ms, 1) + 0.0:+.1f} ms self"  # + 0.0: never "-0.0"
    return styled("grew", "bold red", f" {text}") if change.flagged else Text(text)
