"""``pipeline trace``: find request traces in the local plane's span store, show one as a waterfall.

::

    pipeline trace [--service S] [--slot blue|green] [--release R] [--status error|ok|5xx|503]
                   [--min-ms N] [--since 10m] [--env E] [--limit N] [--json]
    pipeline trace show TRACE_ID [--env E] [--json]

Traces are read from ``spans.db`` in the plane's folder (``.pipeline/`` or
``$PIPELINE_LOCAL_HOME``; an environment's ``local.state_dir`` with ``--env``, which also
keeps only the traces its router served). Traces of AWS environments are in the collector
they are exported to (X-Ray, Jaeger, ...): see docs/observability.md.

Data goes to stdout (a table, a waterfall, or JSON with ``--json``); nothing from a span
(names, attributes) is read as markup.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from pipeline.app import App
from pipeline.console.render import emit_json, out, styled
from pipeline.core.errors import NotFoundError, UsageError
from pipeline.local.plane.control_client import store_held_spans
from pipeline.local.plane.lifecycle import state_dir_of
from pipeline.local.spans import SPANS_FILE, SpanRecord, SpanStore, TraceSummary, valid_status

BAR_WIDTH = 40
_json = click.option("--json", "as_json", is_flag=True, help="Print JSON (for tools) instead of a table.")
_env = click.option("--env", "env_name", default=None,
                    help="A local environment: its plane, its traces only.")


@click.group("trace", invoke_without_command=True)
@click.option("--service", default=None, help="Traces with a span of this service (router, orders, ...).")
@click.option("--slot", type=click.Choice(["blue", "green"]), default=None, help="Traces served by a slot.")
@click.option("--release", default=None, help="Traces served by this release (version).")
@click.option("--status", default=None, help="error, ok, an HTTP status (503) or class (5xx).")
@click.option("--min-ms", type=click.FloatRange(min=0), default=None, help="Traces of at least N ms.")
@click.option("--since", default=None, help="Traces started within this duration (30s, 10m, 2h).")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=20, show_default=True)
@_env
@_json
@click.pass_context
def trace(ctx: click.Context, service: str | None, slot: str | None, release: str | None,
          status: str | None, min_ms: float | None, since: str | None, limit: int, env_name: str | None,
          as_json: bool) -> None:
    """Find recent request traces of the local platform (newest first)."""
    if ctx.invoked_subcommand is not None:
        return
    if status is not None and not valid_status(status):
        raise UsageError(f"--status {status!r} is not a status filter",
                         hint="use error, ok, an HTTP status such as 503, or a class such as 5xx")
    store = _store(ctx.obj, env_name)
    found = store.find(service=service, slot=slot, release=release, status=status, min_ms=min_ms,
                       since=_since(since), environment=env_name, limit=limit)
    if as_json:
        emit_json({"traces": [t.to_json() for t in found]})
        return
    if not found:
        out.print("no trace matches (spans are kept for 24 hours)")
        return
    out.print(_listing(found))


@trace.command("show")
@click.argument("trace_id")
@_env
@_json
@click.pass_obj
def show(app: App, trace_id: str, env_name: str | None, as_json: bool) -> None:
    """Show one trace as a waterfall: every span, indented under its parent, on a time bar."""
    wanted = trace_id.strip().lower()
    if len(wanted) != 32 or any(c not in "0123456789abcdef" for c in wanted):
        raise UsageError(f"{trace_id!r} is not a trace id",
                         hint="a trace id is 32 hex digits (see `pipeline trace`)")
    spans = _store(app, env_name).trace(wanted)
    if not spans:
        raise NotFoundError(f"no trace {wanted} in the span store",
                            hint="spans are kept for 24 hours; list recent ones with `pipeline trace`")
    if as_json:
        emit_json({"trace_id": wanted, "spans": [s.to_json() for s in spans]})
        return
    out.print(waterfall(spans))


def _store(app: App, env_name: str | None) -> SpanStore:
    state_dir = state_dir_of(app.root)
    if env_name is not None:
        env = app.environment(env_name)
        if env.local is None:
            raise UsageError(f"{env_name} is an AWS environment: its traces are in the collector it exports "
                             "to",
                             hint="see docs/observability.md (X-Ray, or the OTLP endpoint you configured)")
        state_dir = state_dir_of(app.root, str(env.local.state_dir))
    if not (Path(state_dir) / SPANS_FILE).exists():
        raise NotFoundError(f"no span store in {state_dir}: the local plane has not recorded any request yet",
                            hint="start it with `pipeline local up` (or deploy), then send requests")
    store_held_spans(Path(state_dir))  # spans the plane holds back while its router is busy
    return SpanStore.of(state_dir)


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    from pipeline.config.durations import parse_duration

    try:
        return time.time() - parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--since {text!r}: {exc}", hint="use a duration such as 30s, 10m or 2h") from exc


def _listing(found: list[TraceSummary]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("TRACE", "STARTED", "ROOT", "DURATION", "SPANS", "SERVICES", "SLOT", "RELEASE", "STATUS"):
        table.add_column(column, justify="right" if column in ("DURATION", "SPANS") else "left")
    for t in found:
        table.add_row(t.trace_id, time.strftime("%H:%M:%S", time.localtime(t.start)),
                      Text(f"{t.service}: {t.name}"), f"{t.duration_ms:.1f} ms", str(t.spans),
                      Text(", ".join(t.services)), t.slot or "-", Text(t.release or "-"), _status(t.status))
    return table


def waterfall_rows(spans: list[SpanRecord]) -> list[tuple[int, SpanRecord]]:
    """``(depth, span)`` in display order: each span after its parent, siblings by start."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = {}
    for s in spans:
        children.setdefault(s.parent_id if s.parent_id in ids else None, []).append(s)
    rows: list[tuple[int, SpanRecord]] = []

    def visit(parent: str | None, depth: int) -> None:
        for child in sorted(children.get(parent, []), key=lambda s: s.start):
            rows.append((depth, child))
            visit(child.span_id, depth + 1)

    visit(None, 0)
    return rows


def waterfall(spans: list[SpanRecord], width: int = BAR_WIDTH) -> Table:
    start, end = min(s.start for s in spans), max(s.end for s in spans)
    total = max(end - start, 1e-9)
    table = Table(box=None, pad_edge=False, title=Text(f"trace {spans[0].trace_id}  "
                                                        f"{(end - start) * 1000:.1f} ms, {len(spans)} spans"))
    for column in ("SPAN", "START", "DURATION", "", "DETAIL"):
        table.add_column(column, justify="right" if column in ("START", "DURATION") else "left", no_wrap=True)
    for depth, s in waterfall_rows(spans):
        offset = round((s.start - start) / total * width)
        length = max(1, round((s.end - s.start) / total * width))
        bar = Text.assemble(" " * offset, ("█" * min(length, width - offset) or "▏",
                                           "red" if _failed(s) else "cyan"))
        table.add_row(Text("  " * depth + f"{s.service}: {s.name}"), f"+{(s.start - start) * 1000:.1f}",
                      f"{s.duration_ms:.1f} ms", bar, Text(_detail(s.attributes)))
    return table


def _failed(span: SpanRecord) -> bool:
    code = span.attributes.get("http.response.status_code")
    return span.status == "error" or (isinstance(code, int) and code >= 500)


def _detail(attributes: dict[str, Any]) -> str:
    shown = []
    for key, label in (("http.response.status_code", ""), ("pipeline.slot", "slot "),
                       ("pipeline.release", ""), ("pipeline.cold_start", "cold"),
                       ("pipeline.throttled", "throttled"), ("db.operation.name", "")):
        value = attributes.get(key)
        if value is None or value is False:
            continue
        shown.append(label if value is True else f"{label}{value}")
    return " ".join(shown)


def _status(status: str) -> Text:
    return styled(status, "red" if status == "error" else "green")
