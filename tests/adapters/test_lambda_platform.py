"""``lambda_platform`` from a real project (``load_project``), against moto.

The example ``notify`` service (``services/notify``) is copied into a project whose one
environment is on AWS; bootstrap and a linear deployment run from its configuration.
"""
# ruff: noqa: F401, F811 - the ``lambda_aws`` fixture is imported, then requested by name

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline.aws.lambda_.bootstrap import apply_lambda, plan_lambda
from pipeline.aws.lambda_.compute import LambdaCompute
from pipeline.aws.lambda_.platform import lambda_platform
from pipeline.aws.lambda_.spec import iam_resources
from pipeline.aws.settings import aws_environment
from pipeline.config import load_project
from pipeline.core.model import ServiceRef, Slot
from pipeline.core.state import Phase
from pipeline.loadtest.stages import ServiceStageRunner
from pipeline.operations import deploy
from tests.adapters.support.git_repo import commit_all, git, init, released
from tests.adapters.support.lambda_world import LambdaWorld, lambda_aws

REPO = Path(__file__).resolve().parents[2]
LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188"
PROJECT = f"""\
project: shop
organisations:
  dev: {{members: [alice]}}
environments:
  aws-dev:
    platform: aws
    owner: dev
    aws:
      region: eu-west-1
      account: "123456789012"
      cluster: shop-dev
      listener_arn: {LISTENER}/f2f7dc8efc522ab2
      test_listener_arn: {LISTENER}/0467ef3c8400ae65
      state_table: pipeline-state
      vpc_id: vpc-0a1b2c3d4e5f60718
      subnets: [subnet-0a1b2c3d4e5f60718]
      security_groups: [sg-0123456789abcdef0]
      ecr_registry: 123456789012.dkr.ecr.eu-west-1.amazonaws.com
      percentile_fallback: true
"""


def _project(tmp: Path) -> Path:
    """The project, committed in a git repository of its own."""
    root = tmp / "project"
    (root / "services").mkdir(parents=True)
    (root / "pipeline.yaml").write_text(PROJECT)
    shutil.copytree(
        REPO / "services" / "notify",
        root / "services" / "notify",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    init(root)
    commit_all(root, "notify v1")
    return root


def test_a_configured_lambda_service_bootstraps_and_deploys_linearly(
    lambda_aws: LambdaWorld, tmp_path: Path
) -> None:
    root = _project(tmp_path)
    project = load_project(root)
    env, service = aws_environment(project, project.environment("aws-dev")), project.service("notify")

    planned = plan_lambda(lambda_aws.session, env, service)
    assert {r.action for r in planned} == {"create"}
    assert ("route", "ANY /notify") in {(r.kind, r.name) for r in planned}
    created = apply_lambda(lambda_aws.session, env, service, clock=lambda_aws.clock)
    assert len(created) == len(planned)

    platform = lambda_platform(
        lambda_aws.session, env, service, lambda_aws.clock, root=root, test_route="invoke"
    )
    assert isinstance(platform.compute, LambdaCompute)
    store_ctx = lambda_aws.context(platform)[0]
    ref = ServiceRef("notify", "aws-dev")
    strategy = project.strategy("notify")

    first = deploy(store_ctx, ref, released("v1", "notify", git(root, "rev-parse", "HEAD")), strategy)
    assert first.phase is Phase.SUCCEEDED, first.reason
    (root / "services" / "notify" / "handler.py").write_text(
        (root / "services" / "notify" / "handler.py").read_text() + "\n# v2\n"
    )
    v2 = commit_all(root, "notify v2")
    lambda_aws.put_metrics("notify-aws-dev", "3", invocations=30, step=10, minutes=10)  # 30 s windows
    second = deploy(store_ctx, ref, released("v2", "notify", v2), strategy)

    assert second.phase is Phase.SUCCEEDED, second.reason
    written = [
        (p["FunctionVersion"], p["RoutingConfig"]["AdditionalVersionWeights"])
        for p in lambda_aws.calls.named("UpdateAlias")
        if p["Name"] == "live"
    ]
    assert written[-4:] == [("2", {"3": 0.25}), ("2", {"3": 0.5}), ("2", {"3": 0.75}), ("3", {})]
    config = lambda_aws.session.client("lambda").get_function_configuration(FunctionName="notify-aws-dev")
    assert (config["Handler"], config["MemorySize"], config["Timeout"]) == ("handler.handle", 256, 10)
    assert (
        lambda_aws.session.client("lambda").get_function_concurrency(FunctionName="notify-aws-dev")[
            "ReservedConcurrentExecutions"
        ]
        == 20
    )
    on_new = [p for p in lambda_aws.calls.named("Invoke") if p.get("Qualifier") == "3"]
    smoke = json.loads(on_new[0]["Payload"])
    assert smoke["rawPath"] == "/notify" and smoke["requestContext"]["http"]["method"] == "POST"
    assert json.loads(smoke["body"]) == {"to": "smoke@example.com", "template": "welcome"}


def test_by_default_stages_run_over_the_http_api_slot_stage(lambda_aws: LambdaWorld, tmp_path: Path) -> None:
    root = _project(tmp_path)
    project = load_project(root)
    env, service = aws_environment(project, project.environment("aws-dev")), project.service("notify")
    apply_lambda(lambda_aws.session, env, service, clock=lambda_aws.clock)

    session, clock = lambda_aws.session, lambda_aws.clock
    platform = lambda_platform(session, env, service, clock, root=root)

    assert isinstance(platform.stages, ServiceStageRunner)
    endpoint = platform.compute.endpoint(Slot.GREEN)
    assert endpoint.startswith("https://") and endpoint.endswith(".execute-api.eu-west-1.amazonaws.com/green")


def test_the_aws_factory_settings_name_the_function(lambda_aws: LambdaWorld, tmp_path: Path) -> None:
    root = _project(tmp_path)
    project = load_project(root)
    settings = aws_environment(project, project.environment("aws-dev"))  # what the factory passes
    service = project.service("notify")

    created = apply_lambda(lambda_aws.session, settings, service, clock=lambda_aws.clock)
    platform = lambda_platform(lambda_aws.session, settings, service, lambda_aws.clock, root=root)

    assert ("lambda function", "notify-aws-dev") in {(r.kind, r.name) for r in created}
    assert isinstance(platform.compute, LambdaCompute)
    assert platform.compute.api.function == "notify-aws-dev"


def test_iam_resources_scope_to_the_environment_functions_role_and_api() -> None:
    common = {
        "partition": "aws",
        "region": "eu-west-1",
        "account": "123456789012",
        "environment": "prod",
        "services": ("notify",),
    }
    assert iam_resources("lambda:UpdateAlias", **common) == [
        "arn:aws:lambda:eu-west-1:123456789012:function:notify-prod",
        "arn:aws:lambda:eu-west-1:123456789012:function:notify-prod:*",
    ]
    assert iam_resources("iam:PassRole", **common) == ["arn:aws:iam::123456789012:role/pipeline-prod-lambda"]
    own = "arn:aws:iam::123456789012:role/team-lambda"
    assert iam_resources("iam:PassRole", **common, role_arn=own) == [own]
    assert iam_resources("cloudwatch:GetMetricData", **common) == []
