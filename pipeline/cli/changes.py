"""``pipeline changes``: which services a push changed (for the push pipeline's matrix)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from pipeline.changes import detect
from pipeline.cli.app import App
from pipeline.cli.render import emit_json, err


@click.command()
@click.option("--base", required=True, help="The commit before the push (all zeros: everything changed).")
@click.option("--head", default="HEAD", show_default=True, help="The pushed commit.")
@click.option(
    "--github-output", is_flag=True, help="Also write services=[...] and any=true|false to $GITHUB_OUTPUT."
)
@click.pass_obj
def changes(app: App, base: str, head: str, github_output: bool) -> None:
    """List the services changed between two commits, as JSON on stdout."""
    paths = {name: tuple(svc.paths) for name, svc in app.project.services.items()}
    result = detect(app.root, base, head, paths)
    emit_json(
        {
            "base": result.base,
            "head": result.head,
            "services": list(result.services),
            "files": list(result.files),
            "everything": result.everything,
        }
    )
    err.print(f"{len(result.services)} service(s) changed: {', '.join(result.services) or 'none'}")
    if github_output:
        target = os.environ.get("GITHUB_OUTPUT")
        if not target:
            raise click.UsageError("--github-output needs $GITHUB_OUTPUT (set by GitHub Actions)")
        with Path(target).open("a", encoding="utf-8") as fh:
            fh.write(f"services={json.dumps(list(result.services))}\n")
            fh.write(f"any={'true' if result.services else 'false'}\n")
