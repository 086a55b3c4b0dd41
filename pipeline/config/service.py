"""Models of ``services/<name>/service.yaml``: what a service is and how it is deployed.

Paths (``paths``, ``build.context``, ``load.locustfile``) are relative to the project
root; ``local.cwd`` is relative to the service folder, where its code lives.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StrictBool, StrictStr

from pipeline.config.api import ApiConfig, quota_problem
from pipeline.config.deploy import DeployConfig
from pipeline.config.fields import (
    Count,
    Duration,
    EnvName,
    EnvVars,
    Fraction,
    Issue,
    Matches,
    Model,
    Name,
    Port,
    PositiveDuration,
    PositiveInt,
    RelPath,
    Text,
    Within,
    presence,
)
from pipeline.config.project import Defaults
from pipeline.core.plan import Strategy


class BuildConfig(Model):
    """How the service's image is built."""

    context: RelPath = Field(description="build context, relative to the project root")
    dockerfile: Text = Field(default="Dockerfile", description="relative to the context")
    args: dict[Text, StrictStr] = Field(default_factory=dict, description="build arguments")
    target: Text | None = Field(default=None, description="multi-stage build target")


class UnitTestConfig(Model):
    """The service's own tests, run before its image is pushed, and an optional smoke
    command for the test stage of a deployment."""

    command: Text = Field(
        description="unit tests: a command line (split like a shell would, run without one) from the root"
    )
    env: EnvVars = Field(default_factory=dict)
    smoke: Text | None = Field(
        default=None,
        description="test stage: shell command run from the project root with TARGET_URL set to the "
        "new slot's test route; exit 0 passes. Unset: the stage requests the health path "
        "(ecs) or the smoke_events (lambda)",
    )


class LocalRunConfig(Model):
    """How the local platform starts one replica; it sets ``PORT`` for each."""

    command: Text = Field(description="shell command that serves HTTP on $PORT")
    cwd: RelPath = Field(default=".", description="relative to the service folder")
    replicas: Annotated[int, Field(strict=True, ge=1, le=16)] = 1
    env: EnvVars = Field(default_factory=dict)


class RouteConfig(Model):
    """The path rule that sends requests to this service (ALB rule or local router)."""

    path: Annotated[
        StrictStr, Matches(r"^/[A-Za-z0-9_\-.$/~\"'@:+*?&=]{0,127}$", "a path pattern starting with '/'")
    ]
    priority: Annotated[int, Field(strict=True, ge=1, le=50000)] = Field(
        description="unique per listener; lower is evaluated first"
    )


class HealthCheckConfig(Model):
    """Target health check of an ECS service's target groups."""

    path: Annotated[StrictStr, Matches(r"^/\S*$", "a URL path starting with '/'")] = "/health"
    # The local platform checks as often as asked; on AWS the ALB's ranges apply
    # (5 s-5 m and 2 s-2 m), checked when an AWS environment uses the service
    # (pipeline.aws.settings.ecs_spec).
    interval: Annotated[Duration, AfterValidator(Within(0, 300, open_low=True))] = 10.0
    timeout: Annotated[Duration, AfterValidator(Within(0, 120, open_low=True))] = 5.0
    healthy_threshold: Annotated[int, Field(strict=True, ge=2, le=10)] = 2
    unhealthy_threshold: Annotated[int, Field(strict=True, ge=2, le=10)] = 2
    start_period: Annotated[Duration, AfterValidator(Within(0, 300))] = Field(
        default=30.0, description="container check: failures while the app starts do not count"
    )
    container: StrictBool = Field(
        default=True,
        description="also run the check inside the container (needs curl or wget in the image); "
        "false for distroless images: the target group's check still decides readiness",
    )

    def _value_rules(self) -> list[Issue]:
        if self.timeout >= self.interval:
            return [
                (
                    ("timeout",),
                    f"timeout {self.timeout:g}s must be shorter than interval "
                    f"{self.interval:g}s: lower it or raise the interval",
                )
            ]
        return []


SECRET_ARN = r"^arn:aws[a-z-]*:(ssm:[a-z0-9-]+:\d{12}:parameter/|secretsmanager:[a-z0-9-]+:\d{12}:secret:).+$"
SecretArn = Annotated[
    StrictStr,
    Matches(
        SECRET_ARN,
        "the ARN of an SSM parameter or a Secrets Manager secret "
        "(arn:aws:ssm:REGION:ACCOUNT:parameter/NAME or arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)",
    ),
]

# Fargate task sizes: cpu units -> allowed memory (MiB)
FARGATE_MEMORY: dict[int, frozenset[int]] = {
    256: frozenset({512, 1024, 2048}),
    512: frozenset(range(1024, 4097, 1024)),
    1024: frozenset(range(2048, 8193, 1024)),
    2048: frozenset(range(4096, 16385, 1024)),
    4096: frozenset(range(8192, 30721, 1024)),
    8192: frozenset(range(16384, 61441, 4096)),
    16384: frozenset(range(32768, 122881, 8192)),
}


AlarmName = Annotated[StrictStr, Matches(r"^[^\x00-\x1f]{1,255}$", "a CloudWatch alarm name")]


class EcsConfig(Model):
    """An ECS (Fargate) service behind the ALB."""

    container: Annotated[StrictStr, Matches(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$", "a container name")]
    port: Port = Field(description="container port the app listens on")
    cpu: Literal[256, 512, 1024, 2048, 4096, 8192, 16384] = 256
    memory: Annotated[int, Field(strict=True, ge=512)] = Field(default=512, description="MiB; must fit cpu")
    desired_count: Annotated[int, Field(strict=True, ge=1, le=1000)] = 1
    environment: EnvVars = Field(default_factory=dict)
    secrets: dict[EnvName, SecretArn] = Field(default_factory=dict)
    health_check: HealthCheckConfig = Field(default_factory=HealthCheckConfig)
    route: RouteConfig
    deregistration_delay: Annotated[Duration, AfterValidator(Within(0, 3600))] = 30.0
    health_check_grace_period: Annotated[Duration, AfterValidator(Within(0, 2147483647))] = Field(
        default=60.0, description="ECS ignores failing target health checks this long after a task starts"
    )
    alarms: tuple[AlarmName, ...] = Field(
        default=(), description="CloudWatch alarms that fail the analysis while in ALARM (aws)"
    )
    count_unhealthy_hosts: StrictBool = Field(
        default=False, description="aws: an unhealthy target of the measured slot fails the analysis"
    )

    def _value_rules(self) -> list[Issue]:
        allowed = FARGATE_MEMORY[self.cpu]
        if self.memory in allowed:
            return []
        low, high = min(allowed), max(allowed)
        return [
            (
                ("memory",),
                f"memory {self.memory} MiB does not fit cpu {self.cpu}: Fargate allows "
                f"{', '.join(map(str, sorted(allowed))) if len(allowed) < 6 else f'{low}..{high}'} MiB",
            )
        ]


class KeepWarmConfig(Model):
    """A schedule pinging the function's live alias with ``{"pipeline-keep-warm": true}``
    (EventBridge on AWS, the plane's timer locally): ``concurrency`` pings at once."""

    every: Annotated[Duration, AfterValidator(Within(60, 86400))] = Field(
        default=300.0, description="whole minutes, 1m..24h (an EventBridge rate)"
    )
    concurrency: Annotated[int, Field(strict=True, ge=1, le=5)] = Field(
        default=1, description="environments kept warm: 1..5 (one rule target each on AWS)"
    )

    def _value_rules(self) -> list[Issue]:
        if self.every % 60:
            return [(("every",), f"every {self.every:g}s is not whole minutes: EventBridge rates count "
                                 "minutes; use e.g. 5m")]
        return []


class LambdaConfig(Model):
    """A Lambda function behind the ALB (or the local Lambda runtime)."""

    handler: Annotated[
        StrictStr, Matches(r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$", "a handler like 'module.function'")
    ]
    runtime: Annotated[StrictStr, Matches(r"^python3\.\d+$", "a Python runtime like 'python3.11'")] = (
        "python3.11"
    )
    memory: Annotated[int, Field(strict=True, ge=128, le=10240)] = Field(default=128, description="MiB")
    timeout: Annotated[Duration, AfterValidator(Within(0, 900, open_low=True))] = 10.0
    reserved_concurrency: PositiveInt | None = None
    provisioned_concurrency: Count | None = None
    environment: EnvVars = Field(default_factory=dict)
    route: RouteConfig
    smoke_events: tuple[dict[StrictStr, Any], ...] = Field(
        default=(), description="requests sent before shifting"
    )
    expected_peak_rps: Annotated[float, Field(strict=True, gt=0)] | None = None
    throttle_guard: Literal["warn", "fail"] = Field(
        default="warn", description="when reserved concurrency cannot carry expected_peak_rps"
    )
    package: Literal["zip", "image"] = Field(
        default="zip", description="zip of the code, or the release's container image from ECR (aws)"
    )
    alarms: tuple[AlarmName, ...] = Field(
        default=(), description="CloudWatch alarms that fail the analysis while in ALARM (aws)"
    )
    keep_warm: KeepWarmConfig | None = Field(
        default=None, description="ping the live alias on a schedule: docs/lambda-local.md#keep-warm"
    )

    def _value_rules(self) -> list[Issue]:
        reserved, provisioned = self.reserved_concurrency, self.provisioned_concurrency
        if reserved is not None and provisioned is not None and provisioned > reserved:
            return [
                (
                    ("provisioned_concurrency",),
                    f"provisioned_concurrency {provisioned} exceeds "
                    f"reserved_concurrency {reserved}: lower it or raise the reservation",
                )
            ]
        return []


class LoadThresholds(Model):
    """Limits the load stage must stay within; unset ones are not checked."""

    fail_ratio: Fraction | None = Field(default=None, description="failed / all requests, 0..1")
    p95_ms: Annotated[float, Field(strict=True, gt=0)] | None = None
    min_rps: Annotated[float, Field(strict=True, ge=0)] | None = None


class LoadRamp(Model):
    """Step load: ``from`` users, then ``+step`` each ``step_duration``, up to ``to``
    (docs/load-testing.md#ramps)."""

    start: PositiveInt = Field(alias="from")
    to: PositiveInt
    step: PositiveInt
    step_duration: Annotated[Duration, AfterValidator(Within(1, 3600))]
    min_knee: PositiveInt | None = Field(default=None, description="gate: the lowest acceptable knee")

    @property
    def levels(self) -> tuple[int, ...]:
        """Users at each step (as ``pipeline.loadtest.ramp.Ramp.levels``: the last is ``to``)."""
        levels = tuple(range(self.start, self.to + 1, self.step))
        return levels if levels[-1] == self.to else (*levels, self.to)

    def _value_rules(self) -> list[Issue]:
        if self.to < self.start:
            return [(("to",), f"to ({self.to}) is below from ({self.start}): a ramp goes up")]
        if (self.to - self.start) // self.step + 1 > 100:
            return [(("step",), f"step {self.step} makes more than 100 steps from {self.start} to {self.to}")]
        if self.min_knee is not None and not self.start <= self.min_knee <= self.to:
            return [(("min_knee",), f"min_knee {self.min_knee} is outside {self.start}..{self.to}")]
        return []


class LoadConfig(Model):
    """The load stage: a locust run against the new release's test route."""

    locustfile: RelPath
    users: PositiveInt = 10
    spawn_rate: Annotated[float, Field(strict=True, gt=0)] = 10.0
    duration: PositiveDuration = 30.0
    user_class: Annotated[StrictStr, Matches(r"^[A-Za-z_]\w*$", "a Python class name")] | None = None
    thresholds: LoadThresholds = Field(default_factory=LoadThresholds)
    ramp: LoadRamp | None = Field(default=None, description="step load instead of users/duration")

    @classmethod
    def _presence_rules(cls, data: dict[Any, Any]) -> list[Issue]:
        if "ramp" not in data:
            return []
        return [
            ((key,), f"{key} is set by the ramp (its top step and its length): remove {key} or the ramp")
            for key in ("users", "duration")
            if key in data
        ]


class ServiceConfig(Model):
    """One ``services/<name>/service.yaml``."""

    name: Name = Field(description="must equal the folder name")
    kind: Literal["ecs", "lambda"]
    owner: Name = Field(description="an organisation from pipeline.yaml")
    paths: Annotated[tuple[RelPath, ...], Field(min_length=1)] = Field(
        description="globs; a change to a matching file means the service changed"
    )
    build: BuildConfig
    test: UnitTestConfig | None = None
    local: LocalRunConfig | None = None
    ecs: EcsConfig | None = None
    lambda_: LambdaConfig | None = Field(default=None, alias="lambda")
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    load: LoadConfig | None = None
    api: ApiConfig | None = Field(default=None, description="keys, plans, CIDRs, cache: docs/api-edge.md")
    calls: tuple[Name, ...] = Field(
        default=(), description="services this one calls: warmed, deepest first, before a shift"
    )

    @classmethod
    def _presence_rules(cls, data: dict[Any, Any]) -> list[Issue]:
        kind = data.get("kind")
        if kind == "ecs":
            return presence(data, "kind", "ecs", {"ecs"}, {"lambda"})
        if kind == "lambda":
            return presence(data, "kind", "lambda", {"lambda"}, {"ecs"})
        return []

    def _value_rules(self) -> list[Issue]:
        if self.deploy.uses_load_stage and self.load is None:
            return [
                (
                    ("load",),
                    "deploy runs a load stage but there is no `load:` section: "
                    "add one (locustfile, users, ...) or remove the load stage from deploy",
                )
            ]
        if self.api is not None and self.load is not None:
            load = self.load
            users, duration = load.users, load.duration
            if load.ramp is not None:  # its mean users over its whole length
                levels = load.ramp.levels
                users, duration = -(-sum(levels) // len(levels)), len(levels) * load.ramp.step_duration
            return quota_problem(self.api, users, duration, load.thresholds.min_rps)
        return []

    @property
    def route(self) -> RouteConfig:
        """The route of the ECS service or Lambda function (exactly one exists)."""
        platform = self.ecs or self.lambda_
        if platform is None:  # pragma: no cover - the kind rule makes one of them required
            raise ValueError(f"service {self.name} has neither an ecs: nor a lambda: block")
        return platform.route

    def strategy(self, defaults: Defaults | None = None) -> Strategy:
        """The deploy section expanded to a core ``Strategy``; timeouts are the core
        defaults, overridden by ``defaults.timeouts``, overridden by ``deploy.timeouts``."""
        return self.deploy.strategy_with((defaults or Defaults()).timeouts)
