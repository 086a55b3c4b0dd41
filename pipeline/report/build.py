"""A deployment's report from a use-case ``Context``: its history, metrics and traces."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.state import DeploymentState
from pipeline.operations import Context
from pipeline.report import page
from pipeline.report.data import DeploymentReport, gather


def report_of(ctx: Context, state: DeploymentState) -> DeploymentReport:
    """What ``state``'s deployment did, read back from the store and its platform's ports."""
    platform = ctx.platform_for(state.ref)
    history = ctx.store.history(state.ref, limit=100_000)
    return gather(state, history, platform.metrics, platform.traces, ctx.clock.now())


def write_report(ctx: Context, state: DeploymentState, path: Path) -> Path:
    """Write ``state``'s deployment report (self-contained HTML) to ``path``."""
    return page.write(path, report_of(ctx, state))
