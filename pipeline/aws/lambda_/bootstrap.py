"""Bootstrap of a Lambda service: what must exist in AWS before its first deployment.

Plan, then execute. ``plan_lambda(session, env, service)`` only reads: it returns one
``pipeline.aws.bootstrap.BootstrapStep`` per resource with ``exists`` and a ``create()``
that makes it; ``pipeline.aws.bootstrap.execute`` runs them in order (``apply_lambda`` is
plan + execute). Each ``create`` looks up what it depends on when it runs (the API id, the
integration id), so a plan made before anything existed executes correctly. A second
run finds everything and creates nothing.

Resources, in order: the execution role (only when the environment sets no
``aws.lambda_role_arn``), the function (created with a placeholder handler answering 503
until the first deployment, published as version 1), the aliases ``live``, ``blue`` and
``green`` (on that version), the function's reserved concurrency when the service sets
``lambda.reserved_concurrency`` (it caps every version, the live one too, so it is
applied here and not by a deployment; ``GetAccountSettings`` is checked first so the
account keeps its 100 unreserved executions), for zip functions the account's private S3
bucket that packages over 50 MB are staged in (``pipeline.aws.lambda_.staging``), the
environment's HTTP API, the function's integration, its routes, the stages
``$default``/``blue``/``green``, and one invoke permission per alias for API Gateway;
with ``lambda.keep_warm``, the EventBridge rule, its targets and its invoke permission.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from pipeline.aws.bootstrap import BootstrapStep, execute
from pipeline.aws.errors import aws_errors
from pipeline.aws.lambda_.api import ACTIVE_TRACING, LambdaApi, error_code, is_not_found
from pipeline.aws.lambda_.concurrency import ConcurrencyApi
from pipeline.aws.lambda_.gateway import STAGE_VARIABLE, STAGES, HttpApi, route_keys
from pipeline.aws.lambda_.keepwarm import keep_warm_steps
from pipeline.aws.lambda_.spec import LambdaSpec, lambda_spec, managed_role_name
from pipeline.aws.lambda_.staging import BOOTSTRAP_ACTIONS as STAGING_ACTIONS
from pipeline.aws.lambda_.staging import CodeBucket, bucket_name
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment
from pipeline.clock import SystemClock
from pipeline.core.errors import NotFoundError, PlatformError
from pipeline.core.ports import Clock

if TYPE_CHECKING:
    from pipeline.config import ServiceConfig

__all__ = ["IAM_ACTIONS", "apply_lambda", "placeholder_zip", "plan", "plan_lambda"]

# What bootstrap calls beyond the deploy adapters (pipeline.aws.lambda_.permissions has all)
IAM_ACTIONS: frozenset[str] = frozenset(
    {
        "lambda:CreateFunction",
        "lambda:GetPolicy",
        "lambda:AddPermission",
        "iam:GetRole",
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:PassRole",
    }
) | STAGING_ACTIONS

LOG_POLICY = "pipeline-lambda-logs"
TRACE_POLICY = "pipeline-lambda-xray"
TRACES = {  # active tracing: Lambda sends the function's segments with the execution role
    "Version": "2012-10-17",
    "Statement": [{  # X-Ray's write actions have no resource-level permissions
        "Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": "*",
    }],
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
ROLE_PROPAGATION = 60.0  # seconds a new IAM role may take before Lambda can assume it


def plan_lambda(
    session: AwsSession, env: AwsEnvironment, service: ServiceConfig, *, clock: Clock | None = None
) -> list[BootstrapStep]:
    """What bootstrap needs for ``service`` (``kind: lambda``) in ``env`` (reads only); with
    ``lambda.keep_warm``, its EventBridge schedule too (``pipeline.aws.lambda_.keepwarm``)."""
    spec = lambda_spec(env, service, root=Path())
    keep = service.lambda_.keep_warm if service.lambda_ is not None else None
    extra = keep_warm_steps(spec, session, keep.every, keep.concurrency) if keep is not None else []
    return plan(spec, session, clock) + extra


def apply_lambda(
    session: AwsSession, env: AwsEnvironment, service: ServiceConfig, *, clock: Clock | None = None
) -> list[BootstrapStep]:
    """Create what is missing for ``service`` in ``env``; return what was created. Idempotent."""
    return execute(plan_lambda(session, env, service, clock=clock))


def plan(spec: LambdaSpec, session: AwsSession, clock: Clock | None = None) -> list[BootstrapStep]:
    """The resources of ``spec``, each with ``exists`` and ``create()``."""
    planner = _Planner(spec, session, clock or SystemClock())
    return planner.function() + planner.http_api()


class _Planner:
    def __init__(self, spec: LambdaSpec, session: AwsSession, clock: Clock) -> None:
        self.spec = spec
        self.clock = clock
        self.iam = session.client("iam")
        self.client = session.client("lambda")
        self.api = LambdaApi(self.client, spec.function)
        self.concurrency = ConcurrencyApi(self.client, spec.function)
        self.bucket = CodeBucket(session.client("s3"), bucket_name(spec.account, spec.region), spec.region)
        self.gateway = HttpApi(session.client("apigatewayv2"), spec.environment)
        self.uri = f"{spec.function_arn}:${{stageVariables.{STAGE_VARIABLE}}}"

    # --- the function ----------------------------------------------------------------

    def function(self) -> list[BootstrapStep]:
        s = self.spec
        out: list[BootstrapStep] = []
        if s.role_managed:
            name = managed_role_name(s.environment)
            out.append(BootstrapStep("iam role", name, self._role_exists(name), self._create_role,
                                       "Lambda execution role: writes its logs, nothing else"))
        exists = self._function_exists()
        out.append(BootstrapStep("lambda function", s.function, exists, self._create_function,
                                   "placeholder until deployed"))
        for alias in STAGES.values():
            present = exists and self.api.alias(alias) is not None
            out.append(BootstrapStep("lambda alias", f"{s.function}:{alias}", present, self._alias(alias)))
        wanted = s.readiness.reserved_concurrency
        if wanted is not None:
            applied = exists and self.concurrency.reserved() == wanted
            out.append(BootstrapStep("reserved concurrency", s.function, applied,
                                       lambda: self.concurrency.reserve(wanted),
                                       f"{wanted} for every version, the live one too (quota checked)"))
        if s.package_type == "zip":
            out.append(BootstrapStep("s3 bucket", self.bucket.name, self.bucket.exists(), self.bucket.create,
                                       "zip packages over 50 MB are uploaded through it"))
        return out

    def _role_exists(self, name: str) -> bool:
        try:
            self.iam.get_role(RoleName=name)
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return False
            with aws_errors(f"read IAM role {name}"):
                raise
        return True

    def _create_role(self) -> None:
        s = self.spec
        name = managed_role_name(s.environment)
        group = f"arn:{s.partition}:logs:{s.region}:{s.account}:log-group:/aws/lambda/*-{s.environment}"
        logs = {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [group, f"{group}:*"],
            }],
        }
        with aws_errors(f"create IAM role {name}"):
            self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
            self.iam.put_role_policy(RoleName=name, PolicyName=LOG_POLICY, PolicyDocument=json.dumps(logs))
            self.iam.put_role_policy(RoleName=name, PolicyName=TRACE_POLICY,
                                     PolicyDocument=json.dumps(TRACES))

    def _function_exists(self) -> bool:
        try:
            self.api.latest()
        except NotFoundError:
            return False
        return True

    def _create_function(self) -> None:
        s = self.spec
        if s.package_type == "image":
            raise PlatformError(
                f"cannot bootstrap {s.function}: container-image functions need an image to be created",
                hint="create the function once from its first image (aws lambda create-function "
                "--package-type Image), then run bootstrap again for the rest",
            )
        params = {
            "FunctionName": s.function, "Role": s.execution_role, "Handler": s.handler, "Runtime": s.runtime,
            "MemorySize": s.memory, "Timeout": s.timeout, "Publish": True, "PackageType": "Zip",
            "Code": {"ZipFile": placeholder_zip(s.handler)},
            "Description": f"{s.service} in {s.environment}, deployed by pipeline",
            "TracingConfig": ACTIVE_TRACING,
        }
        deadline = self.clock.now() + ROLE_PROPAGATION
        while True:
            try:
                self.client.create_function(**params)
                return
            except ClientError as exc:
                young_role = "cannot be assumed" in str(exc) and self.clock.now() < deadline
                if not young_role:
                    with aws_errors(f"create function {s.function}"):
                        raise
            self.clock.sleep(3.0)  # IAM propagation: a new role needs seconds to be usable

    def _alias(self, alias: str) -> Callable[[], None]:
        def create() -> None:
            self.api.point_alias(alias, self.api.versions()[-1].version, None, "created by bootstrap")

        return create

    # --- the HTTP API ------------------------------------------------------------------

    def http_api(self) -> list[BootstrapStep]:
        s, gw = self.spec, self.gateway
        found = gw.find()
        api_id = found.api_id if found else ""
        integration = gw.integration(api_id, self.uri) if found else None
        stages = gw.stages(api_id) if found else set()
        out = [
            BootstrapStep("http api", gw.name, found is not None, self._create_api),
            BootstrapStep("integration", s.function, integration is not None, self._create_integration,
                            self.uri),
        ]
        for key in route_keys(s.route_path):
            target = gw.route_target(api_id, key) if found else None
            if target is not None and target != f"integrations/{integration}":
                raise PlatformError(
                    f"route {key} of {gw.name} already sends requests elsewhere ({target})",
                    hint="another service claims this path: give lambda.route.path a unique value",
                )
            out.append(BootstrapStep("route", key, target is not None, self._route(key)))
        for stage in STAGES:
            out.append(BootstrapStep("stage", stage, stage in stages, self._stage(stage),
                                       f"{STAGE_VARIABLE}={STAGES[stage]}"))
        for alias in STAGES.values():
            sid = f"pipeline-apigw-{api_id}-{alias}"
            present = bool(found) and sid in self._policy(alias)
            out.append(BootstrapStep("invoke permission", f"{s.function}:{alias}", present,
                                       self._permission(alias)))
        return out

    def _api_id(self) -> str:
        found = self.gateway.find()
        if found is None:
            raise NotFoundError(f"the HTTP API {self.gateway.name} vanished during bootstrap",
                                hint="run `pipeline bootstrap` again")
        return found.api_id

    def _create_api(self) -> None:
        self.gateway.create()

    def _create_integration(self) -> None:
        self.gateway.create_integration(self._api_id(), self.uri)

    def _route(self, key: str) -> Callable[[], None]:
        def create() -> None:
            api_id = self._api_id()
            integration = self.gateway.integration(api_id, self.uri)
            if integration is None:
                raise NotFoundError(f"no integration for {self.uri}", hint="run `pipeline bootstrap` again")
            self.gateway.create_route(api_id, key, integration)

        return create

    def _stage(self, stage: str) -> Callable[[], None]:
        return lambda: self.gateway.create_stage(self._api_id(), stage)

    def _permission(self, alias: str) -> Callable[[], None]:
        def create() -> None:
            s, api_id = self.spec, self._api_id()
            with aws_errors(f"allow API Gateway to invoke {s.function}:{alias}"):
                self.client.add_permission(
                    FunctionName=s.function, Qualifier=alias, StatementId=f"pipeline-apigw-{api_id}-{alias}",
                    Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
                    SourceArn=f"arn:{s.partition}:execute-api:{s.region}:{s.account}:{api_id}/*",
                )

        return create

    def _policy(self, alias: str) -> str:
        try:
            data = self.client.get_policy(FunctionName=self.spec.function, Qualifier=alias)
        except ClientError as exc:
            if is_not_found(exc):
                return ""
            with aws_errors(f"read the resource policy of {self.spec.function}:{alias}"):
                raise
        return str(data.get("Policy", ""))


def placeholder_zip(handler: str) -> bytes:
    """A function that answers 503 "not deployed yet" at ``handler`` (``module.function``)."""
    module, _, function = handler.rpartition(".")
    code = (
        f"def {function}(event, context):\n"
        "    return {'statusCode': 503, 'body': 'not deployed yet: run pipeline deploy'}\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo(module.replace(".", "/") + ".py", (1980, 1, 1, 0, 0, 0)), code)
    return buffer.getvalue()
