"""Promotion commands: ``approve`` (by a proven identity) and ``promote`` (the same digest,
when the target's requirements hold or a recorded break-glass override applies).
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.text import Text

from pipeline import promotion
from pipeline.app import App
from pipeline.cli.completion import complete_environments
from pipeline.cli.deploy import (
    confirm,
    context,
    env_option,
    finish,
    json_option,
    override_option,
    report_option,
    reported,
    service_argument,
    yes_option,
)
from pipeline.cli.outputs import github_output_option
from pipeline.console.render import ConsoleSink, err
from pipeline.core.errors import PromotionRefused, UsageError
from pipeline.identity import is_member


@click.command()
@service_argument
@env_option
@click.option(
    "--release", "which", default="", help="Version, commit or digest (default: what the source serves)."
)
@click.pass_obj
def approve(app: App, service: str, env_name: str, which: str) -> None:
    """Record your approval of a release for an environment that requires one."""
    app.writable(env_name, "approve a release for")
    req = app.requirements(env_name)
    if not req.approval:
        raise UsageError(
            f"{env_name} does not require an approval", hint="`pipeline promote` needs none there"
        )
    if req.verified:
        raise UsageError(
            f"approvals for {env_name} come from GitHub: organisations.{req.approval}.github is set",
            hint="approve the promotion pull request on GitHub; `pipeline approval github-pr` records it",
        )
    identity = app.identity(env_name)  # never $PIPELINE_ACTOR, $GITHUB_ACTOR or $USER
    if not identity.verified and not req.unverified:
        raise PromotionRefused(
            f"{identity.describe()} cannot approve for {env_name}: it accepts only verified identities",
            hint="approve where your identity is proven (AWS credentials for an AWS environment, a "
            f"GitHub review), or set `requires: {{unverified: allow}}` on environments.{env_name}",
        )
    if not is_member(identity, req.approvers, unverified=req.unverified):
        raise PromotionRefused(
            f"{identity.describe()} cannot approve for {env_name}: not a member of {req.approval}",
            hint=f"ask a member of {req.approval}: {', '.join(sorted(req.approvers or ()))}",
        )
    if not req.passed and not which:
        raise UsageError("which release? pass --release VERSION", hint="`pipeline history` lists releases")
    source = req.passed[-1] if req.passed else env_name
    ctx = app.context(env_name, ConsoleSink())
    release = promotion.promotable(ctx, service, source)
    if which and which not in (release.version, release.digest, release.commit):
        release = app.release(service, source, None, which)
    promotion.approve(ctx, app.ref(service, env_name), release, req.approval, identity)
    who = f"{identity.describe()} ({req.approval})"
    err.print(Text.assemble(("approved", "green"), f" {release.short} of {service} for {env_name} as {who}"))


@click.command()
@service_argument
@click.option(
    "--from",
    "source",
    required=True,
    help="Environment the release passed.",
    shell_complete=complete_environments,
)
@click.option(
    "--to", "target", required=True, help="Environment to deploy it to.", shell_complete=complete_environments
)
@click.option(
    "--release",
    "digest",
    default="",
    metavar="DIGEST",
    help="Exactly this release (sha256:... or repo@sha256:...), which must have succeeded in --from.",
)
@override_option
@click.option("--reason", default="", help="Why (required with --override-requirements).")
@yes_option
@report_option
@json_option
@github_output_option
@click.pass_obj
def promote(
    app: App,
    service: str,
    source: str,
    target: str,
    digest: str,
    override: bool,
    reason: str,
    yes: bool,
    as_json: bool,
    github_output: bool,
    report_path: Path | None = None,
) -> None:
    """Deploy the same image digest that passed --from into --to, if its requirements hold.

    Without --release, the release --from serves now. GitHub outputs: as deploy's.
    """
    app.writable(target, "promote into")
    app.ref(service, source)
    ctx = context(app, target, override, reason)
    release = promotion.promotable(ctx, service, source, digest)
    promotion.require(ctx, app.ref(service, target), release, app.requirements(target))
    confirm(app, service, target, yes, f"promote {release.short}")
    state = promotion.promote(
        ctx, service, source, target, app.strategy(service, target), app.requirements(target), digest=digest
    )
    finish(reported(ctx, state, report_path), as_json, github_output)
