"""Hand-rolled inline SVG charts for self-contained HTML reports (no scripts, nothing fetched).

Every text that comes from data (series names, labels, span names) goes through
``html.escape``, so data can never add markup. Each chart is one ``<svg>`` element with an
``id``; each data point is a ``<circle class="point">`` carrying its value in a ``<title>``
(a tooltip in browsers, and what a test counts).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 900, 220, 44
_ID = re.compile(r"[^a-z0-9-]+")


def esc(text: object) -> str:
    """``text`` safe inside an element or a quoted attribute."""
    return html.escape(str(text), quote=True)


def chart_id(*parts: str) -> str:
    """An element id made of ``parts``: lower case letters, digits and dashes only."""
    return _ID.sub("-", "-".join(parts).lower()).strip("-") or "chart"


@dataclass(frozen=True, slots=True)
class Line:
    """One series: ``points`` are (epoch seconds, value); a None value breaks the line."""

    name: str
    colour: str
    points: Sequence[tuple[float, float | None]]
    step: bool = False  # hold each value until the next point (weights)


@dataclass(frozen=True, slots=True)
class Mark:
    """A labelled moment on a time axis (an analysis verdict, a phase change)."""

    t: float
    label: str
    colour: str = "#999"


@dataclass(frozen=True, slots=True)
class Axis:
    """The time axis shared by a report's charts: ``t0``..``t1`` epoch seconds."""

    t0: float
    t1: float

    @property
    def span(self) -> float:
        return max(self.t1 - self.t0, 1.0)

    def x(self, t: float) -> float:
        return PAD + (t - self.t0) / self.span * (WIDTH - 2 * PAD)


def polyline(points: Sequence[tuple[float, float]], colour: str, width: float = 2) -> str:
    """An SVG polyline through pixel ``points`` (empty string when there are none)."""
    if not points:
        return ""
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline fill="none" stroke="{esc(colour)}" stroke-width="{width}" points="{coords}"/>'


def _y(value: float, top: float) -> float:
    return HEIGHT - PAD - min(max(value / top, 0.0), 1.0) * (HEIGHT - 2 * PAD)


def _nice_top(values: Sequence[float]) -> float:
    top = max(values, default=0.0)
    if top <= 0:
        return 1.0
    step = 10 ** len(str(int(top))) / 10 if top >= 1 else 0.1
    return (int(top / step) + 1) * step


def _frame(cid: str, title: str, axis: Axis, top: float, unit: str) -> list[str]:
    parts = [
        f'<svg id="{esc(cid)}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{esc(title)}">',
        f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" '
        'fill="#fafafa" stroke="#ccc"/>',
        f'<text x="{PAD}" y="{PAD - 10}" font-size="12" font-weight="bold">{esc(title)}</text>',
    ]
    for frac in (0.0, 0.5, 1.0):
        y = _y(frac * top, top)
        label = f"{frac * top:.3g}{unit}"
        parts.append(f'<text x="{PAD - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
                     f"{esc(label)}</text>")
    ticks = max(1, int(axis.span // 8) or 1)
    for sec in range(0, int(axis.span) + 1, ticks):
        x = axis.x(axis.t0 + sec)
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - PAD + 14}" font-size="10" '
                     f'text-anchor="middle">{sec}s</text>')
    return parts


def _segments(line: Line, axis: Axis, top: float) -> list[list[tuple[float, float]]]:
    segments: list[list[tuple[float, float]]] = [[]]
    for i, (t, v) in enumerate(line.points):
        if v is None:
            segments.append([])
            continue
        y = _y(v, top)
        if line.step and segments[-1]:
            segments[-1].append((axis.x(t), segments[-1][-1][1]))
        segments[-1].append((axis.x(t), y))
        if line.step and i == len(line.points) - 1:
            segments[-1].append((axis.x(axis.t1), y))
    return [s for s in segments if s]


def line_chart(cid: str, title: str, axis: Axis, lines: Sequence[Line], *, unit: str = "",
               top: float | None = None, marks: Sequence[Mark] = ()) -> str:
    """A chart of ``lines`` against time; ``top`` fixes the y scale (e.g. 100 for percent)."""
    values = [v for line in lines for _, v in line.points if v is not None]
    scale = top if top is not None else _nice_top(values)
    parts = _frame(cid, title, axis, scale, unit)
    for mark in marks:
        x = axis.x(mark.t)
        parts.append(f'<line x1="{x:.1f}" y1="{PAD}" x2="{x:.1f}" y2="{HEIGHT - PAD}" '
                     f'stroke="{esc(mark.colour)}" stroke-dasharray="3,3">'
                     f"<title>{esc(mark.label)}</title></line>")
    for line in lines:
        parts.append(f'<g class="series" data-series="{esc(line.name)}">')
        parts.extend(polyline(seg, line.colour) for seg in _segments(line, axis, scale))
        for t, v in line.points:
            if v is not None:
                parts.append(f'<circle class="point" cx="{axis.x(t):.1f}" cy="{_y(v, scale):.1f}" r="2.5" '
                             f'fill="{esc(line.colour)}">'
                             f"<title>{esc(line.name)}: {v:.4g}{esc(unit)}</title></circle>")
        parts.append("</g>")
    parts.append("</svg>")
    legend = " ".join(f'<span style="color:{esc(line.colour)}">━ {esc(line.name)}</span>' for line in lines)
    return "\n".join(parts) + f'\n<p class="legend">{legend}</p>'


def event_chart(cid: str, title: str, axis: Axis, marks: Sequence[Mark]) -> str:
    """Moments on the time axis as coloured dots with their label as a tooltip (verdicts)."""
    height = 90
    parts = [f'<svg id="{esc(cid)}" class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
             f'height="{height}" role="img" aria-label="{esc(title)}">',
             f'<text x="{PAD}" y="16" font-size="12" font-weight="bold">{esc(title)}</text>',
             f'<line x1="{PAD}" y1="50" x2="{WIDTH - PAD}" y2="50" stroke="#ccc"/>']
    for mark in marks:
        parts.append(f'<circle class="point" cx="{axis.x(mark.t):.1f}" cy="50" r="6" '
                     f'fill="{esc(mark.colour)}">'
                     f"<title>{esc(mark.label)}</title></circle>")
    if not marks:
        parts.append(f'<text x="{PAD}" y="75" font-size="11">no analysis in this deployment</text>')
    parts.append("</svg>")
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class Bar:
    """One span of a waterfall: offset and length in ms from the trace's start, nesting depth."""

    label: str
    start_ms: float
    duration_ms: float
    depth: int
    error: bool = False


def waterfall(cid: str, title: str, bars: Sequence[Bar]) -> str:
    """A trace as a waterfall: one row per span, indented by depth, bars on a ms scale."""
    row, left = 22, 300
    total = max((b.start_ms + b.duration_ms for b in bars), default=1.0) or 1.0
    height = PAD + row * max(len(bars), 1) + 10
    scale = (WIDTH - left - 80) / total  # room for the duration after the longest bar
    parts = [f'<svg id="{esc(cid)}" class="chart waterfall" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
             f'height="{height}" role="img" aria-label="{esc(title)}">',
             f'<text x="10" y="20" font-size="12" font-weight="bold">{esc(title)}</text>']
    for i, bar in enumerate(bars):
        y = PAD + i * row
        colour = "#c62828" if bar.error else "#1565c0"
        width = max(bar.duration_ms * scale, 1.0)
        parts.append(f'<text x="{10 + 12 * bar.depth}" y="{y + 13}" font-size="11">{esc(bar.label)}</text>')
        x = left + bar.start_ms * scale
        parts.append(f'<rect class="point" x="{x:.1f}" y="{y + 2}" width="{width:.1f}" '
                     f'height="{row - 6}" fill="{colour}"><title>{esc(bar.label)}: {bar.duration_ms:.1f} ms'
                     "</title></rect>")
        parts.append(f'<text x="{x + width + 4:.1f}" y="{y + 13}" '
                     f'font-size="10">{bar.duration_ms:.1f} ms</text>')
    parts.append("</svg>")
    return "\n".join(parts)
