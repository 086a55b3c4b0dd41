"""The markdown summary of a load run, also appended to GitHub's job summary.

``write_reports`` writes ``summary.md`` and ``result.json`` next to locust's HTML/CSV/JSON
reports and, when ``$GITHUB_STEP_SUMMARY`` names a file, appends the same markdown to it
(GitHub renders that file on the workflow run's page). Appending is the contract: other
steps' summaries in the same file are kept.

Everything that comes from the run (request names and failure messages from locust, the
target, the locustfile) goes through ``pipeline.markdown`` (``md``, ``code``): it reads as
the same text in a table cell or a list item and can never add a column, a link, an
image, HTML or emphasis.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

from pipeline.core.errors import PlatformError
from pipeline.loadtest.coldstarts import markdown_lines as cold_start_lines
from pipeline.loadtest.gates import GateCheck
from pipeline.loadtest.hops import markdown_lines as hop_lines
from pipeline.loadtest.knee import markdown_lines
from pipeline.loadtest.result import LoadResult
from pipeline.loadtest.stats import EndpointFigures
from pipeline.markdown import code, md

__all__ = ["STEP_SUMMARY_ENV", "code", "format_value", "markdown", "md", "new_report_dir", "write_reports"]

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def markdown(result: LoadResult) -> str:
    """The summary: verdict, load shape, a table of figures vs thresholds, endpoints, files."""
    s, f = result.settings, result.figures
    verdict = "✅ passed" if result.passed else "❌ failed"
    where = f"{result.service} @ {result.environment}" if result.environment else result.service
    workers = f", {result.workers} workers" if result.workers else ""
    lines = [
        f"### Load test: {md(where)} — {verdict}",
        "",
        f"Target {code(result.target)} · {'up to ' if s.ramp else ''}{s.users} users "
        f"(spawn {s.spawn_rate:g}/s) · "
        f"{s.duration:g} s{workers} · locustfile {code(str(s.locustfile))}"
        + (f" ({md(s.user_class)})" if s.user_class else ""),
        "",
        "| check | measured | threshold | result |",
        "|---|---|---|---|",
        *(_check_row(check) for check in result.checks),
        "",
    ]
    if result.reasons:
        lines += [*(f"- {md(reason)}" for reason in result.reasons), ""]
    if result.ramp is not None:
        lines += markdown_lines(result.ramp)
    if result.hops is not None:
        lines += hop_lines(result.hops)
    if result.cold_starts is not None:
        lines += cold_start_lines(result.cold_starts)
    if result.failure_samples:
        lines += [
            "Most frequent failures (from locust's failures CSV, whose counts may lag):",
            "",
            *(f"- {md(sample.describe())}" for sample in result.failure_samples),
            "",
        ]
    lines += [
        f"p50 {f.p50_ms:g} ms · p95 {f.p95_ms:g} ms · p99 {f.p99_ms:g} ms · max {f.max_ms:g} ms · "
        f"{f.requests} requests in {f.duration_s:g} s",
        "",
        "| endpoint | requests | failures | p95 (ms) |",
        "|---|---:|---:|---:|",
        *(_endpoint_row(e) for e in f.endpoints),
        "",
        f"Reports: {code(str(result.reports.html))} (HTML), {code(str(result.reports.csv_stats))} (CSV), "
        f"{code(str(result.reports.json))} (JSON)",
        "",
    ]
    return "\n".join(lines)


def _endpoint_row(e: EndpointFigures) -> str:
    return f"| {md(f'{e.method} {e.name}')} | {e.requests} | {e.failures} | {e.p95_ms:g} |"


def _check_row(check: GateCheck) -> str:
    mark = "✅ pass" if check.passed else "❌ fail"
    if check.name == "requests":
        return f"| {md(check.label)} | {check.value:g} | ≥ 1 | {mark} |"
    bound = "≤" if check.bound == "<=" else "≥"
    measured, limit = format_value(check.name, check.value), format_value(check.name, check.limit)
    return f"| {md(check.label)} | {measured} | {bound} {limit} | {mark} |"


def format_value(name: str, value: float) -> str:
    """A figure in its unit: ratios as percent, times in ms, throughput in req/s."""
    if name == "fail_ratio":
        return f"{value:.2%}"
    if name == "p95_ms":
        return f"{value:g} ms"
    if name == "min_rps":
        return f"{value:g} req/s"
    if name == "knee":
        return f"{value:g} users"
    return f"{value:g}"


def write_reports(result: LoadResult, environ: Mapping[str, str] | None = None) -> Path | None:
    """Write ``summary.md`` and ``result.json``; append the summary to ``$GITHUB_STEP_SUMMARY``.

    Returns the step-summary file appended to, or None when the variable is unset.
    Rewriting the run's own files is idempotent; the step summary grows by one section.
    """
    env = os.environ if environ is None else environ
    text = markdown(result)
    summary = env.get(STEP_SUMMARY_ENV)
    path = Path(summary) if summary else None
    try:
        result.reports.directory.mkdir(parents=True, exist_ok=True)
        result.reports.markdown.write_text(text, encoding="utf-8")
        result.reports.result.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
        if path is not None:
            with path.open("a", encoding="utf-8") as handle:
                handle.write(text + "\n")
    except OSError as exc:
        raise PlatformError(
            f"cannot write the load test report: {exc.filename}: {exc.strerror or exc}",
            hint=f"make the reports folder (and ${STEP_SUMMARY_ENV}, if set) writable",
        ) from exc
    return path


def new_report_dir(reports_root: Path, service: str, environment: str) -> Path:
    """Create and return a new folder ``<reports_root>/<service>/<env>/<UTC timestamp>[-n]``
    (``adhoc`` when there is no environment); never reuses an existing one."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = reports_root / service / (environment or "adhoc")
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise PlatformError(
        f"cannot create a report folder under {base}: 999 runs already started this second",
        hint="wait a second and run again",
    )
