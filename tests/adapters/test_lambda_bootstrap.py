"""Bootstrap of a Lambda service against moto, and the IAM actions the adapters need."""
# ruff: noqa: F401, F811 - the ``lambda_aws`` fixture is imported, then requested by name

from __future__ import annotations

import json

import pytest

from pipeline.aws.bootstrap import execute
from pipeline.aws.lambda_.bootstrap import placeholder_zip, plan
from pipeline.aws.lambda_.gateway import HttpApi, route_keys
from pipeline.aws.lambda_.keepwarm import keep_warm_steps
from pipeline.aws.lambda_.permissions import IAM_ACTIONS
from pipeline.core.errors import PlatformError
from pipeline.core.model import ServiceRef, Slot
from pipeline.operations import deploy, rollback
from pipeline.testing import release
from tests.adapters.support.lambda_world import LambdaWorld, canary_strategy, lambda_aws

EXPECTED = [
    ("iam role", "pipeline-dev-lambda"),
    ("lambda function", "orders-dev"),
    ("lambda alias", "orders-dev:live"),
    ("lambda alias", "orders-dev:blue"),
    ("lambda alias", "orders-dev:green"),
    ("s3 bucket", "pipeline-lambda-123456789012-eu-west-1"),
    ("http api", "pipeline-dev"),
    ("integration", "orders-dev"),
    ("route", "ANY /orders/{proxy+}"),
    ("stage", "$default"),
    ("stage", "blue"),
    ("stage", "green"),
    ("invoke permission", "orders-dev:live"),
    ("invoke permission", "orders-dev:blue"),
    ("invoke permission", "orders-dev:green"),
]


def test_plan_apply_then_nothing_left_to_create(lambda_aws: LambdaWorld) -> None:
    spec = lambda_aws.spec()

    planned = plan(spec, lambda_aws.session, lambda_aws.clock)
    assert [(r.kind, r.name) for r in planned] == EXPECTED
    assert {r.action for r in planned} == {"create"}
    verbs = ("Create", "Put", "Add", "Update")
    assert [n for n, _ in lambda_aws.calls.made if n.split(":")[1].startswith(verbs)] == []

    created = execute(planned)  # the plan made before anything existed
    assert [(r.kind, r.name) for r in created] == EXPECTED

    lambda_aws.calls.clear()
    again = plan(spec, lambda_aws.session, lambda_aws.clock)
    assert {r.action for r in again} == {"exists"}
    assert execute(again) == []
    assert [n for n, _ in lambda_aws.calls.made if n.split(":")[1].startswith(verbs)] == []


def test_steps_fit_the_environment_bootstrap(lambda_aws: LambdaWorld) -> None:
    from pipeline.aws.bootstrap import describe
    from pipeline.aws.bootstrap import execute as execute_all

    steps = plan(lambda_aws.spec(), lambda_aws.session, lambda_aws.clock)

    assert describe(steps)[1].split() == ["create", "lambda", "function", "orders-dev"]
    assert len(execute_all(steps)) == len(EXPECTED)
    assert lambda_aws.session.client("lambda").get_alias(FunctionName="orders-dev", Name="live")


def test_bootstrap_wires_the_stages_to_the_aliases(lambda_aws: LambdaWorld) -> None:
    spec = lambda_aws.spec()
    lambda_aws.bootstrap(spec)
    gateway = lambda_aws.session.client("apigatewayv2")
    api = HttpApi(gateway, "dev")
    found = api.find()
    assert found is not None

    stages = {s["StageName"]: s["StageVariables"] for s in gateway.get_stages(ApiId=found.api_id)["Items"]}
    assert stages == {
        "$default": {"lambdaAlias": "live"},
        "blue": {"lambdaAlias": "blue"},
        "green": {"lambdaAlias": "green"},
    }
    uris = [i["IntegrationUri"] for i in gateway.get_integrations(ApiId=found.api_id)["Items"]]
    assert uris == [f"{spec.function_arn}:${{stageVariables.lambdaAlias}}"]
    assert api.stage_url(Slot.GREEN) == f"{found.endpoint}/green"
    policy = json.loads(
        lambda_aws.session.client("lambda").get_policy(FunctionName=spec.function, Qualifier="live")["Policy"]
    )
    sids = {s["Sid"] for s in policy["Statement"]}  # moto answers every alias's statements
    assert sids == {f"pipeline-apigw-{found.api_id}-{alias}" for alias in ("live", "blue", "green")}
    assert {s["Principal"]["Service"] for s in policy["Statement"]} == {"apigateway.amazonaws.com"}


def test_an_existing_execution_role_is_used_as_is(lambda_aws: LambdaWorld) -> None:
    role = lambda_aws.session.client("iam").create_role(RoleName="team-role", AssumeRolePolicyDocument="{}")
    spec = lambda_aws.spec(role_arn=role["Role"]["Arn"])

    planned = execute(plan(spec, lambda_aws.session, lambda_aws.clock))

    assert "iam role" not in {r.kind for r in planned}
    config = lambda_aws.session.client("lambda").get_function_configuration(FunctionName=spec.function)
    assert config["Role"] == role["Role"]["Arn"]


def test_route_keys_follow_the_alb_style_path() -> None:
    assert route_keys("/orders/*") == ("ANY /orders/{proxy+}",)
    assert route_keys("/orders") == ("ANY /orders",)
    assert route_keys("/notify*") == ("ANY /notify", "ANY /notify/{proxy+}")
    assert route_keys("/*") == ("ANY /{proxy+}",)
    with pytest.raises(PlatformError, match="only allowed at the end"):
        route_keys("/a/*/b")


def test_the_placeholder_answers_503_from_the_configured_handler() -> None:
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(placeholder_zip("pkg.app.handle"))).namelist()
    assert names == ["pkg/app.py"]


def _iam_action(service: str, operation: str) -> str:
    if service == "apigatewayv2":
        return "apigateway:GET" if operation.startswith("Get") else "apigateway:POST"
    if (service, operation) == ("lambda", "Invoke"):
        return "lambda:InvokeFunction"
    s3 = {"HeadBucket": "s3:ListBucket", "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock"}
    if service == "s3" and operation in s3:  # https://docs.aws.amazon.com/service-authorization
        return s3[operation]
    return f"{service if service != 'monitoring' else 'cloudwatch'}:{operation}"


def test_iam_actions_cover_every_call_of_bootstrap_deploy_and_rollback(lambda_aws: LambdaWorld) -> None:
    spec = lambda_aws.spec()
    lambda_aws.bootstrap(spec)
    assert execute(plan(spec, lambda_aws.session, lambda_aws.clock)) == []  # reads everything
    execute(keep_warm_steps(spec, lambda_aws.session, 300.0, 2))  # lambda.keep_warm's schedule
    execute(keep_warm_steps(spec, lambda_aws.session, 300.0, 1))  # a lower concurrency
    platform = lambda_aws.platform(spec)
    ctx, _, _ = lambda_aws.context(platform)
    ref = ServiceRef("orders", "dev")
    deploy(ctx, ref, release("v1"), canary_strategy())
    lambda_aws.write_code("{'statusCode': 200, 'body': 'v2'}")
    lambda_aws.put_metrics("orders-dev", "3", invocations=50)
    deploy(ctx, ref, release("v2"), canary_strategy())
    back = rollback(ctx, ref, canary_strategy())
    assert back is not None and back.phase.value == "succeeded" and back.release == release("v1")
    live = platform.router.get_weights()
    assert live is not None and live.of(back.new_slot) == 100
    platform.compute.endpoint(Slot.BLUE)

    injected = {"monitoring:PutMetricData", "cloudwatch:PutMetricData"}  # the test's own data
    used = {_iam_action(*name.split(":")) for name, _ in lambda_aws.calls.made if name not in injected}
    # ``iam:PassRole`` is checked by CreateFunction and UpdateFunctionConfiguration, not called
    assert used - IAM_ACTIONS == set()
    unused = IAM_ACTIONS - used
    assert unused <= {
        "iam:PassRole",
        "lambda:PutFunctionConcurrency",
        "lambda:PutProvisionedConcurrencyConfig",  # not configured
        "lambda:GetProvisionedConcurrencyConfig",
        "lambda:DeleteProvisionedConcurrencyConfig",
        "lambda:GetFunctionConcurrency",
        "lambda:UpdateFunctionConfiguration",
        "cloudwatch:DescribeAlarms",
        "lambda:CreateAlias",
        "lambda:GetAccountSettings",  # no reserved or provisioned concurrency configured
        "s3:PutObject",  # the package is under the direct-upload limit
    }, unused
