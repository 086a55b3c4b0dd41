"""The demo's HTML report: a summary table and one timeline chart per scene.

Self-contained (inline SVG and CSS, no scripts, nothing fetched), so it opens anywhere.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.demo.timeline import Timeline
from pipeline.report.svg import polyline

WIDTH, HEIGHT, PAD = 900, 220, 40


@dataclass(frozen=True, slots=True)
class SceneResult:
    name: str
    outcome: str
    expected: str
    detail: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.outcome == self.expected


def _x(t: float, t0: float, span: float) -> float:
    return PAD + (t - t0) / span * (WIDTH - 2 * PAD)


def _y(fraction: float) -> float:
    return HEIGHT - PAD - fraction * (HEIGHT - 2 * PAD)


def chart(timeline: Timeline) -> str:
    """An SVG chart: both slots' weights (%), the error rate (%) and marks, against seconds."""
    samples = timeline.samples
    if not samples:
        return "<p>no samples</p>"
    t0 = min([samples[0].t] + [m.t for m in timeline.marks])
    t1 = max([samples[-1].t] + [m.t for m in timeline.marks])
    span = max(t1 - t0, 1.0)
    green = [(_x(s.t, t0, span), _y(s.green / 100)) for s in samples]
    blue = [(_x(s.t, t0, span), _y(s.blue / 100)) for s in samples]
    errors = [(_x(s.t, t0, span), _y(min(s.error_rate, 1.0))) for s in samples]
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img">',
        f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" '
        'fill="#fafafa" stroke="#ccc"/>',
    ]
    for pct in (0, 50, 100):
        y = _y(pct / 100)
        parts.append(f'<text x="{PAD - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{pct}%</text>')
    for sec in range(0, int(span) + 1, max(1, int(span // 8) or 1)):
        x = _x(t0 + sec, t0, span)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - PAD + 14}" font-size="10" text-anchor="middle">{sec}s</text>'
        )
    for mark in timeline.marks:
        x = _x(mark.t, t0, span)
        parts.append(
            f'<line x1="{x:.1f}" y1="{PAD}" x2="{x:.1f}" y2="{HEIGHT - PAD}" '
            'stroke="#999" stroke-dasharray="3,3"/>'
        )
        parts.append(
            f'<text x="{x + 3:.1f}" y="{PAD - 4}" font-size="9" '
            f'transform="rotate(-20 {x + 3:.1f} {PAD - 4})">'
            f"{html.escape(mark.label)}</text>"
        )
    parts.append(polyline(blue, "#1565c0", 2.5))
    parts.append(polyline(green, "#2e7d32", 2.5))
    parts.append(polyline(errors, "#c62828", 1.5))
    parts.append("</svg>")
    legend = (
        '<p class="legend"><span style="color:#1565c0">━ blue slot weight</span> '
        '<span style="color:#2e7d32">━ green slot weight</span> '
        '<span style="color:#c62828">━ error rate (all requests)</span></p>'
    )
    return "\n".join(parts) + legend


def write_report(path: Path, scenes: Sequence[SceneResult], timelines: Sequence[Timeline]) -> Path:
    rows = "\n".join(
        f"<tr class={'ok' if s.ok else 'bad'}><td>{html.escape(s.name)}</td><td>{html.escape(s.outcome)}</td>"
        f"<td>{html.escape(s.expected)}</td><td>{s.seconds:.1f}s</td><td>{html.escape(s.detail)}</td></tr>"
        for s in scenes
    )
    charts = "\n".join(f"<h2>{html.escape(t.title)}</h2>\n{chart(t)}" for t in timelines)
    stamp = dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pipeline demo report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
tr.ok td:nth-child(2) {{ color: #2e7d32; font-weight: bold; }}
tr.bad td:nth-child(2) {{ color: #c62828; font-weight: bold; }}
.legend span {{ margin-right: 2em; }}
</style></head><body>
<h1>pipeline demo</h1><p>{stamp}</p>
<table><tr><th>scene</th><th>outcome</th><th>expected</th><th>time</th><th>detail</th></tr>
{rows}
</table>
{charts}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
    return path
