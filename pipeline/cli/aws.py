"""AWS commands: ``pipeline bootstrap`` and ``pipeline iam-policy``.

Registered in ``pipeline.cli.main.COMMANDS``. Data goes to stdout (the plan,
the policy JSON), progress to stderr.
"""

from __future__ import annotations

import click

from pipeline.app import App
from pipeline.aws.bootstrap import describe, execute
from pipeline.aws.factory import AwsFactory
from pipeline.aws.iam import POLICY_KINDS, PolicyKind, ServiceKinds, policy
from pipeline.aws.settings import aws_environment
from pipeline.console.render import emit_json, err, out, styled
from pipeline.core.edge import IssuedKey
from pipeline.core.errors import UsageError


def _aws_env(app: App, env_name: str) -> None:
    env = app.environment(env_name)
    if env.platform != "aws":
        raise UsageError(
            f"environment {env_name} runs on the {env.platform} platform: there is nothing to set up on AWS",
            hint="pass an environment with `platform: aws` in pipeline.yaml",
        )


@click.command()
@click.option("--env", "env_name", required=True, help="An environment with platform aws.")
@click.argument("service", required=False)
@click.option("--dry-run", is_flag=True, help="Print what would be created; change nothing.")
@click.pass_obj
def bootstrap(app: App, env_name: str, service: str | None, dry_run: bool) -> None:
    """Create the AWS resources SERVICE (default: every service) needs in ENV. Idempotent."""
    _aws_env(app, env_name)
    project = app.project
    services = (
        [project.service(service)] if service else [project.services[n] for n in sorted(project.services)]
    )
    factory = AwsFactory(project, app.clock, actor=app.actor)
    steps = factory.bootstrap_plan(app.environment(env_name), services, _reveal)
    for line in describe(steps):
        out.print(line, markup=False)
    if dry_run:
        err.print(f"dry run: {sum(st.action == 'create' for st in steps)} resource(s) would be created")
        return
    created = execute(steps)
    existed = len(steps) - len(created)
    err.print(styled("bootstrapped", "green", f" {env_name}: created {len(created)}, {existed} existed"))


def _reveal(service: str, issued: IssuedKey) -> None:
    """A declared API key bootstrap just created: its secret on stdout, this once."""
    key = issued.key
    out.print(f"secret  api key  {service} {key.name} (plan {key.plan}): {issued.secret}", markup=False)
    err.print(f"the secret of {service}'s key {key.name} is shown only now: hand it to its holder "
              "(x-api-key header); `pipeline keys list` shows its hint only", markup=False)


@click.command("iam-policy")
@click.option("--env", "env_name", required=True, help="An environment with platform aws.")
@click.option(
    "--kind",
    type=click.Choice(POLICY_KINDS),
    default="deploy",
    show_default=True,
    help="deploy: the role CI deploys with (no IAM writes); bootstrap: for the people who run "
    "`pipeline bootstrap` (creates roles, rules, the HTTP API; includes deploy).",
)
@click.pass_obj
def iam_policy(app: App, env_name: str, kind: PolicyKind) -> None:
    """Print the least-privilege IAM policy (JSON) of ENV's deploy role, or with
    --kind bootstrap the policy of the people who bootstrap ENV."""
    _aws_env(app, env_name)
    project = app.project
    settings = aws_environment(project, app.environment(env_name))
    kinds = ServiceKinds(
        ecs=tuple(sorted(n for n, s in project.services.items() if s.kind == "ecs")),
        lambda_=tuple(sorted(n for n, s in project.services.items() if s.kind == "lambda")),
        edge=tuple(sorted(n for n, s in project.services.items() if s.api is not None)),
    )
    emit_json(policy(settings, kinds, kind=kind))
