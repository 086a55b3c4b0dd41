"""The deployment report as one self-contained HTML page (inline SVG and CSS, no scripts,
nothing fetched), so it opens anywhere: a browser, a CI artifact viewer, an e-mail.

Charts (each an ``<svg>`` with a fixed id, see ``CHART_IDS``): request rate, error rate
and p95 latency per slot, the weights, the analysis verdicts, then one trace waterfall per
slot (``waterfall-blue``/``waterfall-green``) when the platform keeps traces. Every data
text is escaped (``svg.esc``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline.core.model import Slot
from pipeline.report.data import DeploymentReport
from pipeline.report.svg import Axis, Line, Mark, esc, event_chart, line_chart, waterfall

CHART_IDS = ("chart-rate", "chart-errors", "chart-p95", "chart-weights", "chart-verdicts")
COLOURS = {Slot.BLUE: "#1565c0", Slot.GREEN: "#2e7d32"}
VERDICT_COLOURS = {
    "successful": "#2e7d32", "failed": "#c62828", "inconclusive": "#f9a825", "error": "#6a1b9a",
}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 960px; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
.legend span { margin-right: 2em; } .phase-succeeded { color: #2e7d32; }
.phase-failed, .phase-rolled_back { color: #c62828; }
.note { color: #666; }
"""


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _metric_lines(report: DeploymentReport, field: str) -> list[Line]:
    lines = []
    for slot, samples in report.samples.items():
        points = [(s.t, getattr(s, field)) for s in samples]
        lines.append(Line(f"{slot.value}", COLOURS[slot], points))
    return lines


def _weights(report: DeploymentReport) -> list[Line]:
    points: dict[Slot, list[tuple[float, float | None]]] = {Slot.BLUE: [], Slot.GREEN: []}
    old = report.state.new_slot.other()
    if report.state.stable is not None:  # the stable release served everything when it began
        for slot, pts in points.items():
            pts.append((report.t0, 100.0 if slot is old else 0.0))
    for r in report.records:
        weights = r.data.get("weights")
        if isinstance(weights, dict):
            for slot, pts in points.items():
                pts.append((r.ts, float(weights.get(slot.value, 0))))
    return [Line(f"{slot.value} weight", COLOURS[slot], pts, step=True) for slot, pts in points.items()]


def _verdicts(report: DeploymentReport) -> list[Mark]:
    """One mark per analysis: the records of one event (same time) share its verdict, and
    their notes (the verdict, then what it led to) make one label."""
    judged: dict[tuple[float, str], list[str]] = {}
    for r in report.records:
        verdict = r.data.get("verdict")
        if isinstance(verdict, str):
            judged.setdefault((r.ts, verdict), []).append(r.detail)
    return [Mark(ts, f"{_when(ts)} {verdict}: {'; '.join(notes)}", VERDICT_COLOURS.get(verdict, "#999"))
            for (ts, verdict), notes in judged.items()]


def _traces(report: DeploymentReport) -> str:
    parts = ["<h2>Slowest request per slot</h2>"]
    if report.traces_error:
        return parts[0] + f'<p class="note">traces unavailable: {esc(report.traces_error)}</p>'
    if report.slowest is None:
        return parts[0] + '<p class="note">no traces recorded (this platform keeps none)</p>'
    for slot, worst in report.slowest.items():
        if worst is None:
            parts.append(f'<h3>{esc(slot.value)}</h3><p class="note">no traces recorded for this slot</p>')
            continue
        title = f"{slot.value}: trace {worst.trace_id} ({worst.duration_ms:.1f} ms)"
        parts.append(f"<h3>{esc(slot.value)}</h3>" + waterfall(f"waterfall-{slot.value}", title, worst.bars))
    return "\n".join(parts)


def _history(report: DeploymentReport) -> str:
    rows = "\n".join(
        f"<tr><td>{esc(_when(r.ts))}</td><td>{esc(r.actor)}</td><td>{esc(r.action)}</td><td>{esc(r.detail)}</td></tr>"
        for r in report.records
    )
    head = "<tr><th>time</th><th>who</th><th>what</th><th>why</th></tr>"
    return f"<h2>History</h2><table>{head}\n{rows}\n</table>"


def render(report: DeploymentReport) -> str:
    """The report's HTML document."""
    s = report.state
    axis = Axis(report.t0, report.t1)
    marks = _verdicts(report)
    why = report.metrics_error
    metrics_note = f'<p class="note">metrics unavailable: {esc(why)}</p>' if why else ""
    stable = s.stable.short if s.stable else "none"
    charts = "\n".join((
        line_chart("chart-rate", "request rate per slot (requests/s)", axis, _metric_lines(report, "rate"),
                   unit="/s", marks=marks),
        line_chart("chart-errors", "error rate per slot (% 5xx)", axis, _metric_lines(report, "error_rate"),
                   unit="%", marks=marks),
        line_chart("chart-p95", "p95 latency per slot (ms)", axis, _metric_lines(report, "p95_ms"),
                   unit=" ms", marks=marks),
        line_chart("chart-weights", "weights (%)", axis, _weights(report), unit="%", top=100.0),
        event_chart("chart-verdicts", "analysis verdicts (hover for the reason)", axis, marks),
    ))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(f"deployment of {s.release.short} to {s.ref}")}</title>
<style>{_STYLE}</style></head><body>
<h1>{esc(s.ref)}: {esc(s.release.short)}</h1>
<p>deployment {esc(s.id)}, <span class="phase-{esc(s.phase.value)}">{esc(s.phase.value)}</span>
{esc(s.reason)}</p>
<p>new slot {esc(s.new_slot.value)}; previous release {esc(stable)};
{esc(_when(report.t0))} to {esc(_when(report.t1))}</p>
{metrics_note}
{charts}
{_traces(report)}
{_history(report)}
</body></html>
"""


def write(path: Path, report: DeploymentReport) -> Path:
    """Write the report to ``path`` (folders created); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report), encoding="utf-8")
    return path
