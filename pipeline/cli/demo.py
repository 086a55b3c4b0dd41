"""``pipeline demo``: the whole pipeline on this machine, no AWS account needed."""

from __future__ import annotations

import click

from pipeline.app import App
from pipeline.console.render import err
from pipeline.core.errors import DeploymentFailed


@click.command()
@click.option("--keep-running", is_flag=True, help="Leave the demo's local plane running at the end.")
@click.pass_obj
def demo(app: App, keep_running: bool) -> None:
    """Deploy the example services locally: canaries under load, an automatic rollback,
    a Lambda canary, a promotion to prod and a rollback; then a summary and an HTML report."""
    from pipeline.demo.scenes import Demo

    code = Demo(app.root, err, keep_running=keep_running).run()
    if code:
        raise DeploymentFailed("the demo did not go as expected", hint="see the summary table and the report")
