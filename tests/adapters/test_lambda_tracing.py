"""Lambda active tracing: bootstrap creates the function with X-Ray active tracing, and every
configuration update a deployment makes asks for it again (recorded at the botocore level:
moto stores a TracingConfig given at creation but ignores one in an update)."""
# ruff: noqa: F401, F811 - the ``lambda_aws`` fixture is imported, then requested by name

from __future__ import annotations

from pipeline.aws.lambda_.api import FunctionSettings, LambdaApi
from pipeline.aws.lambda_.bootstrap import TRACE_POLICY
from tests.adapters.support.lambda_world import LambdaWorld, lambda_aws


def test_bootstrap_creates_the_function_with_active_tracing(lambda_aws: LambdaWorld) -> None:
    spec = lambda_aws.spec()
    lambda_aws.bootstrap(spec)
    [created] = lambda_aws.calls.named("CreateFunction")
    assert created["TracingConfig"] == {"Mode": "Active"}
    described = lambda_aws.session.client("lambda").get_function_configuration(FunctionName=spec.function)
    assert described["TracingConfig"] == {"Mode": "Active"}


def test_a_configuration_update_keeps_active_tracing(lambda_aws: LambdaWorld) -> None:
    spec = lambda_aws.spec()
    lambda_aws.bootstrap(spec)
    lambda_aws.calls.clear()
    api = LambdaApi(lambda_aws.session.client("lambda"), spec.function)
    api.update_settings(FunctionSettings(handler="app.handler", runtime="python3.12", memory=256, timeout=10,
                                         role_arn=spec.execution_role))
    [update] = lambda_aws.calls.named("UpdateFunctionConfiguration")
    assert update["TracingConfig"] == {"Mode": "Active"} and update["MemorySize"] == 256


def test_the_execution_role_bootstrap_creates_may_send_trace_segments(lambda_aws: LambdaWorld) -> None:
    spec = lambda_aws.spec()
    lambda_aws.bootstrap(spec)
    iam = lambda_aws.session.client("iam")
    role = iam.get_role(RoleName=spec.execution_role.rpartition("/")[2])["Role"]["RoleName"]
    document = iam.get_role_policy(RoleName=role, PolicyName=TRACE_POLICY)["PolicyDocument"]
    [statement] = document["Statement"]
    assert set(statement["Action"]) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
