"""``LambdaSpec``: everything the Lambda adapters and bootstrap need, as plain values.

The adapters never read configuration; ``lambda_spec()`` is the one function that turns
an environment and a ``service.yaml`` (``kind: lambda``) into a spec, and tests build
specs directly. Naming, in one place so the adapters, bootstrap and IAM policy agree:

- function ``<service>-<environment>`` (functions are per account and region, and two
  environments may share an account); aliases ``live``, ``blue``, ``green``;
- execution role: the environment's ``aws.lambda_role_arn``, else the bootstrap-managed
  ``pipeline-<environment>-lambda``;
- HTTP API ``pipeline-<environment>`` (see ``pipeline.aws.lambda_.gateway``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pipeline.aws.lambda_.api import FunctionSettings
from pipeline.aws.lambda_.compute import Readiness
from pipeline.aws.lambda_.staging import bucket_name
from pipeline.aws.settings import AwsEnvironment, partition_of
from pipeline.core.errors import PlatformError

if TYPE_CHECKING:
    from pipeline.config import ServiceConfig

__all__ = ["LambdaSpec", "iam_resources", "lambda_spec", "managed_role_name"]


def managed_role_name(environment: str) -> str:
    return f"pipeline-{environment}-lambda"


def managed_role_arn(partition: str, account: str, environment: str) -> str:
    """The ARN of the bootstrap-managed execution role of ``environment``'s functions."""
    return f"arn:{partition}:iam::{account}:role/{managed_role_name(environment)}"


@dataclass(frozen=True, slots=True)
class LambdaSpec:
    """One Lambda service in one environment. Memory in MiB, timeout in whole seconds."""

    environment: str
    service: str
    region: str
    account: str
    handler: str
    source: Path
    route_path: str
    runtime: str = "python3.11"
    memory: int = 128
    timeout: int = 10
    role_arn: str = ""  # "" = the bootstrap-managed role
    variables: tuple[tuple[str, str], ...] = ()
    package_type: Literal["zip", "image"] = "zip"
    readiness: Readiness = Readiness()
    alarm_names: tuple[str, ...] = ()
    alias: str = "live"
    percentile_fallback: bool = False  # test endpoint only: Maximum Duration when p95 is refused

    @property
    def function(self) -> str:
        return f"{self.service}-{self.environment}"[:64]

    @property
    def partition(self) -> str:
        return partition_of(self.region)

    @property
    def role_managed(self) -> bool:
        return not self.role_arn

    @property
    def execution_role(self) -> str:
        return self.role_arn or managed_role_arn(self.partition, self.account, self.environment)

    @property
    def function_arn(self) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{self.function}"

    @property
    def settings(self) -> FunctionSettings:
        return FunctionSettings(
            handler=self.handler,
            runtime=self.runtime,
            memory=self.memory,
            timeout=self.timeout,
            role_arn=self.execution_role,
            environment=self.variables,
            package_type=self.package_type,
        )


# Lambda actions that take no resource (AWS Service Authorization Reference, "Actions
# defined by AWS Lambda": GetAccountSettings has no resource type); a function ARN there
# would never match, and the call would be denied.
_ACCOUNT_WIDE = frozenset({"lambda:GetAccountSettings"})


def iam_resources(
    action: str,
    *,
    partition: str,
    region: str,
    account: str,
    environment: str,
    services: tuple[str, ...],
    role_arn: str = "",
) -> list[str]:
    """The ARNs the Lambda adapters need ``action`` on (``[]``: unscoped, i.e. ``*``).

    For ``pipeline iam-policy``: functions ``<service>-<environment>`` and their versions and
    aliases; the execution role (``iam:PassRole`` there should carry the condition
    ``iam:PassedToService = lambda.amazonaws.com``); the environment's HTTP API; the
    functions' keep-warm rules.
    """
    prefix, _, name = action.partition(":")
    role = role_arn or managed_role_arn(partition, account, environment)
    if action in _ACCOUNT_WIDE:
        return []  # no resource-level permission exists for it: "*" is the only resource
    if prefix == "lambda":
        fn = f"arn:{partition}:lambda:{region}:{account}:function"
        return [f"{fn}:{s}-{environment}{suffix}" for s in services for suffix in ("", ":*")]
    if prefix == "iam" and name in ("GetRole", "CreateRole", "PutRolePolicy", "PassRole"):
        return [role]
    if prefix == "s3":  # the staging bucket of zip packages (pipeline.aws.lambda_.staging)
        bucket = f"arn:{partition}:s3:::{bucket_name(account, region)}"
        return [bucket, f"{bucket}/*"]
    if prefix == "apigateway":
        apis = f"arn:{partition}:apigateway:{region}::/apis"
        return [apis, f"{apis}/*"]
    if prefix == "events":  # the keep-warm rules (pipeline.aws.lambda_.keepwarm.rule_name)
        rules = f"arn:{partition}:events:{region}:{account}:rule"
        return [f"{rules}/{f'pipeline-keep-warm-{s}-{environment}'[:64]}" for s in services]
    return []


def lambda_spec(env: AwsEnvironment, service: ServiceConfig, *, root: Path) -> LambdaSpec:
    """The spec of ``service`` (``kind: lambda``) in ``env``; ``root`` is the project root
    that ``build.context`` is relative to. PlatformError when it has no ``lambda:`` section."""
    config = service.lambda_
    if config is None:
        raise PlatformError(
            f"cannot deploy {service.name} to AWS Lambda: its service.yaml has no `lambda:` section",
            hint="set `kind: lambda` and a `lambda:` section (handler, route, ...) in its service.yaml",
        )
    readiness = Readiness(
        smoke_events=tuple(config.smoke_events),
        route=config.route.path,
        provisioned_concurrency=config.provisioned_concurrency,
        reserved_concurrency=config.reserved_concurrency,
        expected_peak_rps=config.expected_peak_rps,
        throttle_guard=config.throttle_guard,
    )
    return LambdaSpec(
        environment=env.name,
        service=service.name,
        region=env.region,
        account=env.account,
        handler=config.handler,
        source=root / service.build.context,
        route_path=config.route.path,
        runtime=config.runtime,
        memory=config.memory,
        timeout=max(1, math.ceil(config.timeout)),
        role_arn=env.lambda_role_arn,
        variables=tuple(sorted((k, str(v)) for k, v in config.environment.items())),
        package_type=config.package,
        readiness=readiness,
        alarm_names=tuple(config.alarms),
        percentile_fallback=env.percentile_fallback,
    )
