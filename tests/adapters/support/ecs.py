"""Helpers of the ECS adapter tests: an environment built in moto's server, injected facts.

The fixtures that use them are in ``tests.adapters.support.ecs_fixtures`` (loaded with ``pytest_plugins``).

``create_infrastructure`` makes what a platform team would own (VPC, two subnets, a
security group, an internal ALB with a live listener on :80 and a test listener on :8080,
an ECS cluster); ``pipeline bootstrap``'s planner then creates what the toolkit owns.

Data-plane facts moto cannot produce are injected here, and only here:

- target health: ECS never registers tasks in target groups in moto, so
  ``register_targets`` registers IP targets in a slot's target group (moto reports
  registered IP targets healthy at once; a slot with none registered is never ready);
- running counts: none injected. moto's ``UpdateService`` sets ``runningCount`` to the
  new ``desiredCount``, which the adapter reads as it is;
- traffic: ``put_traffic`` writes ``RequestCount``, ``HTTPCode_Target_5XX_Count`` and
  ``TargetResponseTime`` datapoints for a slot's target group with ``PutMetricData``;
- alarms: ``PutMetricAlarm`` then ``SetAlarmState`` (moto never evaluates alarms).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from pipeline.aws.alb.router import AlbListenerRouter, service_routes
from pipeline.aws.alb.rules import SlotTargetGroups
from pipeline.aws.bootstrap import execute, plan_environment
from pipeline.aws.ecs.bootstrap import plan_ecs_service
from pipeline.aws.factory import ecs_platform
from pipeline.aws.iam import iam_actions_of_call
from pipeline.aws.session import AwsSession, SessionSettings
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec, HealthCheckSpec, target_group_dimension
from pipeline.aws.state.lock import DynamoLockManager
from pipeline.aws.state.store import DynamoStateStore
from pipeline.core.analysis import AnalysisSpec, Check
from pipeline.core.model import ServiceRef, Slot
from pipeline.core.plan import Strategy
from pipeline.core.state import DeploymentState, Timeouts
from pipeline.core.steps import Analyze, Pause, SetWeight, canary
from pipeline.operations import Context, deploy
from pipeline.testing import ActionLog, CollectingSink, FakeClock, FakeStages, release
from tests.adapters.conftest import REGION

ACCOUNT = "123456789012"
START = 1_790_000_000.0  # a fixed, recent epoch (2026-09): CloudWatch timestamps stay plausible


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION, config=Config(retries={"total_max_attempts": 1}))


def create_infrastructure(name: str = "aws-test") -> AwsEnvironment:
    """VPC, subnets, security group, ALB with live and test listeners, ECS cluster."""
    ec2, elbv2, ecs = _client("ec2"), _client("elbv2"), _client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate("ab")
    ]
    group = ec2.create_security_group(GroupName="shop-services", Description="services", VpcId=vpc)["GroupId"]
    balancer = elbv2.create_load_balancer(
        Name="shop", Subnets=subnets, SecurityGroups=[group], Scheme="internal", Type="application"
    )["LoadBalancers"][0]["LoadBalancerArn"]
    not_found = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]
    live, test = (
        elbv2.create_listener(LoadBalancerArn=balancer, Protocol="HTTP", Port=port, DefaultActions=not_found)[
            "Listeners"
        ][0]["ListenerArn"]
        for port in (80, 8080)
    )
    ecs.create_cluster(clusterName="shop")
    return AwsEnvironment(
        name=name,
        region=REGION,
        account=ACCOUNT,
        cluster="shop",
        listener_arn=live,
        test_listener_arn=test,
        state_table="pipeline-state",
        vpc_id=vpc,
        subnets=tuple(subnets),
        security_groups=(group,),
        ecr_registry=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
        execution_role_arn=f"arn:aws:iam::{ACCOUNT}:role/shop-ecs-execution",
        percentile_fallback=True,  # the test endpoint answers p95 queries with HTTP 500
    )


def orders_spec(**changes: Any) -> EcsServiceSpec:
    values: dict[str, Any] = {
        "name": "orders",
        "container": "orders",
        "port": 8000,
        "route_path": "/orders*",
        "route_priority": 10,
        "desired_count": 2,
        "environment": (("LOG_LEVEL", "info"),),
        "secrets": (("DB_PASSWORD", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/orders/db"),),
        "health_check": HealthCheckSpec(path="/health", interval=5.0, timeout=2.0),
        "deregistration_delay": 10.0,
        "min_requests": 20,
    }
    values.update(changes)
    return EcsServiceSpec(**values)


@dataclass
class CallLog:
    """Every AWS call the adapters make, and the HTTP requests of them that reached moto.

    ``calls`` counts API calls by operation (once per call, whatever the retries);
    ``reached`` counts HTTP attempts (retries included) that went to the server. Fault
    hooks on ``before-send.<service>.<Operation>`` run before this generic handler: one
    that raises stops it; one that answers instead of the server marks the request
    (``answered_by_fault``) so it is not counted. ``actions`` collects the IAM actions.
    """

    calls: Counter[str] = field(default_factory=Counter)
    reached: Counter[str] = field(default_factory=Counter)
    actions: set[str] = field(default_factory=set)

    def attach(self, session: AwsSession) -> CallLog:
        session.on("before-call", self._call)
        session.on("before-send", self._attempt)
        return self

    def _call(self, model: Any, params: Any = None, **_: Any) -> None:
        self.calls[model.name] += 1
        self.actions |= iam_actions_of_call(model.service_model.signing_name, model.name, params)

    def _attempt(self, event_name: str, request: Any, **_: Any) -> None:
        if not getattr(request, "answered_by_fault", False):
            self.reached[event_name.rsplit(".", 1)[-1]] += 1

    def reset(self) -> None:
        self.calls.clear()
        self.reached.clear()


def new_session(max_attempts: int = 2) -> AwsSession:
    return AwsSession(SessionSettings(region=REGION, actor="tester", max_attempts=max_attempts))


def bootstrap(session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock) -> None:
    execute(plan_environment(session, env, clock) + plan_ecs_service(session, env, spec))


def register_targets(session: AwsSession, spec: EcsServiceSpec, slot: Slot, count: int) -> None:
    """Inject target health: ``count`` IP targets (healthy at once in moto) in ``slot``'s group."""
    groups = SlotTargetGroups(session, (spec.target_group(Slot.BLUE), spec.target_group(Slot.GREEN)))
    base = 10 if slot is Slot.BLUE else 20
    targets = [{"Id": f"10.20.0.{base + i}", "Port": spec.port} for i in range(count)]
    _client("elbv2").register_targets(TargetGroupArn=groups.arns().of(slot), Targets=targets)


def put_traffic(
    session: AwsSession,
    env: AwsEnvironment,
    spec: EcsServiceSpec,
    slot: Slot,
    *,
    start: float,
    seconds: float,
    requests: int = 50,
    errors: int = 0,
    latency: float = 0.05,
    refused: int = 0,
) -> None:
    """Inject traffic: every 10 s from ``start``, ``requests`` requests, ``errors`` 5xx,
    ``refused`` connections the targets refused, ``latency`` seconds response time, for
    ``slot``'s target group."""
    groups = SlotTargetGroups(session, (spec.target_group(Slot.BLUE), spec.target_group(Slot.GREEN)))
    dimensions = [
        {"Name": "LoadBalancer", "Value": env.load_balancer_dimension},
        {"Name": "TargetGroup", "Value": target_group_dimension(groups.arns().of(slot))},
    ]
    data = []
    for step in range(int(seconds // 10)):
        when = datetime.fromtimestamp(start + step * 10, tz=UTC)
        for name, value in (
            ("RequestCount", requests),
            ("HTTPCode_Target_5XX_Count", errors),
            ("TargetConnectionErrorCount", refused),
            ("TargetResponseTime", latency),
        ):
            data.append({"MetricName": name, "Dimensions": dimensions, "Timestamp": when, "Value": value})
    cloudwatch = _client("cloudwatch")
    for first in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=data[first : first + 500])


def set_alarm(name: str, state: str) -> None:
    """Inject an alarm state: create the alarm (moto starts it OK), then force ``state``."""
    cloudwatch = _client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="injected by the test")


def desired_count(env: AwsEnvironment, service: str) -> int:
    found = _client("ecs").describe_services(cluster=env.cluster, services=[service])["services"][0]
    return int(found["desiredCount"])


def write_project(root: Path, env: AwsEnvironment) -> None:
    """A project on disk: ``pipeline.yaml`` with ``env`` as ``aws-test`` (assumed role) and
    the ECS service ``orders``."""
    (root / "services" / "orders").mkdir(parents=True)
    (root / "pipeline.yaml").write_text(
        f"""
project: shop
organisations: {{dev: {{}}, ops: {{}}}}
environments:
  aws-test:
    platform: aws
    owner: ops
    aws:
      region: {env.region}
      account: "{env.account}"
      role_arn: arn:aws:iam::{env.account}:role/pipeline-deploy
      cluster: {env.cluster}
      listener_arn: {env.listener_arn}
      test_listener_arn: {env.test_listener_arn}
      state_table: {env.state_table}
      vpc_id: {env.vpc_id}
      subnets: [{", ".join(env.subnets)}]
      security_groups: [{", ".join(env.security_groups)}]
      ecr_registry: {env.ecr_registry}
      execution_role_arn: {env.execution_role_arn}
      percentile_fallback: true
"""
    )
    (root / "services" / "orders" / "service.yaml").write_text(
        """
name: orders
kind: ecs
owner: dev
paths: [services/orders/**]
build: {context: services/orders}
ecs:
  container: orders
  port: 8000
  desired_count: 2
  route: {path: "/orders*", priority: 10}
deploy: {strategy: blue-green}
"""
    )


# --- a whole deployment through the engine ---------------------------------------------

REF = ServiceRef("orders", "aws-test")
STRATEGY = Strategy(
    steps=canary((SetWeight(20), Pause(60), Analyze(), SetWeight(50), Pause(60), Analyze())),
    analysis=AnalysisSpec(
        checks=(Check("error_rate", 0.05), Check("p95_ms", 500)),
        min_requests=20,
        window_seconds=60,
        interval_seconds=10,
        period_seconds=60,  # CloudWatch's whole minutes, complete after the realism layer's
        lag_seconds=180,  # longest delay (AwsFactory sets these from the environment)
    ),
    timeouts=Timeouts(ready=60, verify=30, stage=60, hold=3600, poll=5),
)


@dataclass
class Harness:
    ctx: Context
    store: DynamoStateStore
    stages: FakeStages
    log: CallLog
    router: AlbListenerRouter

    def deploy(self, version: str) -> DeploymentState:
        return deploy(self.ctx, REF, release(version), STRATEGY)


def harness(session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock) -> Harness:
    store = DynamoStateStore(session, env.state_table)
    stages = FakeStages(ActionLog())
    platform = ecs_platform(session, env, spec, clock, stages)
    ctx = Context(
        store=store,
        locks=DynamoLockManager(session, env.state_table, clock),
        clock=clock,
        sink=CollectingSink(),
        platform_for=lambda ref: platform,
        actor="tester",
        owner="tester-run",
    )
    live, _ = service_routes(session, env, spec)
    return Harness(ctx, store, stages, CallLog().attach(session), AlbListenerRouter(live))
