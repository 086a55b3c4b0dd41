"""Models of ``pipeline.yaml``: the project, its organisations, defaults and environments.

References between names (an owner must be an organisation, ``requires.passed`` must
name environments, no cycles) are checked by ``pipeline.config.references`` so that they
are reported even when other parts of the file are invalid.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictStr, model_validator

from pipeline.config.deploy import TimeoutsConfig
from pipeline.config.fields import Issue, Matches, Model, Name, PositiveDuration, RelPath, Text, presence
from pipeline.config.observe import NotifyConfig, ObservabilityConfig
from pipeline.config.quiet import EnvironmentAnalysisConfig
from pipeline.core.plan import Strategy


class GitHubOrgConfig(Model):
    """The GitHub organisation (and optionally team) whose members approve for an organisation."""

    org: Annotated[
        StrictStr,
        Matches(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$", "a GitHub organisation like 'acme-ops'"),
    ]
    team: Annotated[
        StrictStr, Matches(r"^[a-z0-9][a-z0-9_-]{0,99}$", "a GitHub team slug like 'release-approvers'")
    ] | None = Field(default=None, description="team slug; approvers must be active members of it")


_Member = Annotated[
    StrictStr,
    Matches(
        r"^(aws:arn:aws[a-z-]*:(iam|sts)::(\d{12}|\*):\S+|[^\s:]+)$",
        "a login like 'carol', or an STS ARN pattern like "
        "'aws:arn:aws:sts::123456789012:assumed-role/ops-admin/*'",
    ),
]
"""An organisation member: a login (OS account, GitHub login) or ``aws:`` + an ARN pattern."""


class Organisation(Model):
    """A group of people; ``members`` empty means anyone may act for it. A member is a login
    (an OS account, a GitHub login) or ``aws:ARN-PATTERN`` (an STS caller ARN, ``*`` wildcards)."""

    members: tuple[_Member, ...] = Field(
        default=(),
        description="logins, or aws:ARN patterns (e.g. aws:arn:aws:sts::123456789012:assumed-role/ops/*)",
    )
    github: GitHubOrgConfig | None = Field(
        default=None, description="approvals come only from reviews by members of this GitHub org/team"
    )

    @model_validator(mode="before")
    @classmethod
    def _null_is_empty(cls, data: Any) -> Any:
        return {} if data is None else data


class Defaults(Model):
    """Project-wide settings that services may override."""

    lock_ttl: PositiveDuration = Field(default=30.0, description="lease of the (service, environment) lock")
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)


class Requires(Model):
    """What a release needs before it may be deployed to an environment."""

    approval: Name | None = Field(default=None, description="organisation that must approve")
    passed: tuple[Name, ...] = Field(
        default=(), description="environments the release must have succeeded in"
    )
    unverified: Literal["allow", "deny"] | None = Field(
        default=None,
        description="allow: an OS-account identity may approve (and break glass) here; "
        "unset = allow on local environments, deny on AWS",
    )


class LocalPlatformConfig(Model):
    """Where the local platform serves an environment."""

    port: Annotated[int, Field(strict=True, ge=1024, le=65535)] = Field(description="router port")
    state_dir: RelPath = Field(
        default=".pipeline", description="state, logs and registry, relative to the root"
    )


AWS_ACCOUNT = r"^\d{12}$"


def _arn(service: str, what: str) -> Matches:
    return Matches(rf"^arn:aws[a-z-]*:{service}:", f"the ARN of {what} (arn:aws:{service}:...)")


_Account = Annotated[StrictStr, Matches(AWS_ACCOUNT, 'a quoted 12-digit account id like "123456789012"')]
_Listener = Annotated[StrictStr, _arn("elasticloadbalancing", "an ALB listener")]
_Subnet = Annotated[StrictStr, Matches(r"^subnet-[0-9a-z]+$", "a subnet id like 'subnet-0abc'")]
_SecurityGroup = Annotated[StrictStr, Matches(r"^sg-[0-9a-z]+$", "a security group id like 'sg-0abc'")]
_EcrHost = Annotated[
    StrictStr, Matches(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$", "an ECR registry host")
]

# The values CloudWatch Logs' PutRetentionPolicy accepts (days)
LogRetentionDays = Literal[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653
]


class AwsPlatformConfig(Model):
    """The AWS resources an environment deploys into."""

    region: Annotated[StrictStr, Matches(r"^[a-z]{2}(-[a-z]+)+-\d+$", "an AWS region like 'eu-west-1'")]
    # Keys in AWS_DEPLOY_KEYS are required (EnvironmentConfig's rules) unless `access: read`.
    account: _Account | None = None
    role_arn: Annotated[StrictStr, _arn("iam", "an IAM role")] | None = Field(
        default=None, description="role to assume; unset = the ambient credentials"
    )
    cluster: Text | None = Field(default=None, description="ECS cluster name (unless access: read)")
    listener_arn: _Listener | None = None
    test_listener_arn: _Listener | None = Field(
        default=None, description="listener that reaches only the new slot (test and load stages)"
    )
    state_table: Text = Field(description="DynamoDB table for state, locks and history")
    vpc_id: Annotated[StrictStr, Matches(r"^vpc-[0-9a-z]+$", "a VPC id like 'vpc-0abc'")] | None = None
    subnets: Annotated[tuple[_Subnet, ...], Field(min_length=1)] | None = None
    security_groups: Annotated[tuple[_SecurityGroup, ...], Field(min_length=1)] | None = None
    ecr_registry: _EcrHost | None = None
    assign_public_ip: StrictBool = False
    execution_role_arn: Annotated[StrictStr, _arn("iam", "an IAM role")] | None = Field(
        default=None, description="ECS task execution role"
    )
    task_role_arn: Annotated[StrictStr, _arn("iam", "an IAM role")] | None = None
    lambda_role_arn: Annotated[StrictStr, _arn("iam", "an IAM role")] | None = Field(
        default=None, description="execution role of Lambda functions"
    )
    log_group: Text | None = Field(
        default=None, description="CloudWatch log group; unset = /pipeline/<project>"
    )
    log_retention_days: LogRetentionDays = Field(
        default=30, description="retention of the log group `pipeline bootstrap` creates"
    )
    url: Annotated[StrictStr, Matches(r"^https?://\S+$", "an http(s) URL")] | None = Field(
        default=None, description="public base URL of the listener"
    )
    test_url: Annotated[StrictStr, Matches(r"^https?://\S+$", "an http(s) URL")] | None = Field(
        default=None, description="base URL of the test listener"
    )
    endpoint_url: Annotated[StrictStr, Matches(r"^https?://\S+$", "an http(s) URL")] | None = Field(
        default=None, description="AWS API endpoint override (a local AWS stand-in)"
    )
    percentile_fallback: StrictBool = Field(
        default=False,
        description="test endpoint only: judge latency by the window's Maximum when the endpoint "
        "cannot compute p95; never on AWS",
    )


class EnvironmentConfig(Model):
    """One deployment target."""

    platform: Literal["local", "aws"]
    owner: Name = Field(description="organisation that owns the environment")
    access: Literal["write", "read"] = Field(
        default="write", description="read: history, status and requirements only (another repo deploys)"
    )
    auto_deploy: StrictBool = Field(default=False, description="deploy on every push to the main branch")
    requires: Requires = Field(default_factory=Requires)
    local: LocalPlatformConfig | None = None
    aws: AwsPlatformConfig | None = None
    analysis: EnvironmentAnalysisConfig = Field(
        default_factory=EnvironmentAnalysisConfig, description="synthetic traffic and on_inconclusive"
    )
    max_pause: PositiveDuration | None = Field(
        default=None, description="cap timed pauses, bakes and keep_previous here (sandboxes, tests)"
    )
    observability: ObservabilityConfig = Field(
        default_factory=ObservabilityConfig, description="where deployment traces go (OTLP/HTTP)"
    )
    notify: NotifyConfig | None = Field(default=None, description="deployment notifications (webhook, SNS)")

    def allows_unverified(self) -> bool:
        """Whether OS-account identities count here: ``requires.unverified``, by default
        only on the local platform (the machine's accounts are all it has)."""
        if self.requires.unverified is None:
            return self.platform == "local"
        return self.requires.unverified == "allow"

    def shape(self, strategy: Strategy) -> Strategy:
        """A service's strategy as deployments to this environment run it (``config.quiet``);
        a person is expected where the environment requires an approval."""
        attended = self.requires.approval is not None
        return self.analysis.apply(
            strategy, attended=attended, max_pause=self.max_pause, platform=self.platform
        )

    @classmethod
    def _presence_rules(cls, data: dict[Any, Any]) -> list[Issue]:
        platform = data.get("platform")
        if platform == "local":
            return presence(data, "platform", "local", {"local"}, {"aws"})
        if platform == "aws":
            return presence(data, "platform", "aws", {"aws"}, {"local"}) + _aws_for_deploying(data)
        return []


AWS_DEPLOY_KEYS = (
    "account",
    "cluster",
    "listener_arn",
    "test_listener_arn",
    "vpc_id",
    "subnets",
    "security_groups",
    "ecr_registry",
)


def _aws_for_deploying(data: dict[Any, Any]) -> list[Issue]:
    """The ``aws`` keys deploying needs; an ``access: read`` environment only reads history
    (region, state_table, optional role_arn and endpoint_url)."""
    aws = data.get("aws")
    if data.get("access") == "read" or not isinstance(aws, dict):
        return []
    return [
        (("aws", key), "required key is missing: add it (only an `access: read` environment may omit it)")
        for key in AWS_DEPLOY_KEYS
        if aws.get(key) is None
    ]


class ProjectConfig(Model):
    """``pipeline.yaml``."""

    project: Name
    organisations: Annotated[dict[Name, Organisation], Field(min_length=1)]
    defaults: Defaults = Field(default_factory=Defaults)
    environments: Annotated[dict[Name, EnvironmentConfig], Field(min_length=1)]
    shared_paths: tuple[RelPath, ...] = Field(
        default=(), description="globs; a change to a matching file means every service changed"
    )
