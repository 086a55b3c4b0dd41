"""The ``iam-policy`` output covers exactly the AWS actions bootstrap, deploy and rollback call.

A ``before-call`` hook on the session records every call (as IAM actions) while the
orders service is bootstrapped, deployed (first release, a promoted canary, a canary
failed by an alarm, a slot that never becomes ready, with a stopped task to explain) and
rolled back. The policy for the same environment must allow each recorded action, and
allow nothing else beyond the short documented list ``NOT_CALLED_HERE``.
"""

from __future__ import annotations

import boto3

from pipeline.aws.ecr import registry as ecr
from pipeline.aws.iam import AUTHORIZATION_ONLY, ServiceKinds, policy, policy_actions
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment
from pipeline.core.model import Slot
from pipeline.core.state import Phase
from pipeline.operations import rollback
from pipeline.testing import FakeClock
from tests.adapters.conftest import REGION
from tests.adapters.support.ecs import (
    REF,
    STRATEGY,
    CallLog,
    bootstrap,
    harness,
    orders_spec,
    put_traffic,
    register_targets,
    set_alarm,
)

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)

# Allowed by the policy, not called in this scenario, and why:
NOT_CALLED_HERE = AUTHORIZATION_ONLY | {
    "dynamodb:Scan",  # DynamoStateStore.deployments(): `pipeline status` without a service
}
# ECR actions beyond repository creation are the image push and resolve of `pipeline push`
# and `pipeline deploy --ref` (the ECR adapter's own tests exercise them).
ECR_IMAGE_ACTIONS = frozenset(ecr.IAM_ACTIONS) - {
    "ecr:DescribeRepositories",
    "ecr:CreateRepository",
    "ecr:PutLifecyclePolicy",
}


def inject_stopped_task(env: AwsEnvironment) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    probe = ecs.register_task_definition(
        family="orders-probe", containerDefinitions=[{"name": "orders", "image": "x", "memory": 128}]
    )["taskDefinition"]["taskDefinitionArn"]
    task = ecs.run_task(
        cluster=env.cluster, taskDefinition=probe, launchType="FARGATE", group="service:orders-green"
    )
    ecs.stop_task(cluster=env.cluster, task=task["tasks"][0]["taskArn"], reason="OutOfMemoryError")


def test_the_policy_allows_exactly_the_recorded_actions(
    session: AwsSession, ecs_env: AwsEnvironment, clock: FakeClock
) -> None:
    spec = orders_spec(alarm_names=("orders-5xx",))
    log = CallLog().attach(session)

    bootstrap(session, ecs_env, spec, clock)
    h = harness(session, ecs_env, spec, clock)
    register_targets(session, spec, Slot.BLUE, 2)
    assert h.deploy("1.0.0").phase is Phase.SUCCEEDED
    inject_stopped_task(ecs_env)
    assert h.deploy("2.0.0").phase is Phase.ROLLED_BACK  # green never ready: diagnostics
    register_targets(session, spec, Slot.GREEN, 2)
    put_traffic(session, ecs_env, spec, Slot.GREEN, start=clock.now(), seconds=3600)
    assert h.deploy("3.0.0").phase is Phase.SUCCEEDED  # canary with analysis and alarms
    rolled = rollback(h.ctx, REF, STRATEGY)  # back to 1.0.0
    assert rolled is not None and rolled.phase is Phase.SUCCEEDED
    set_alarm("orders-5xx", "ALARM")
    assert h.deploy("4.0.0").phase is Phase.ROLLED_BACK  # the alarm fails the analysis

    allowed = policy_actions(policy(ecs_env, ServiceKinds(ecs=("orders",))))
    recorded = frozenset(log.actions)

    assert recorded - allowed == set(), "called but not allowed"
    unused = allowed - recorded
    assert unused - NOT_CALLED_HERE - ECR_IMAGE_ACTIONS == set(), "allowed but never called"
    assert allowed >= NOT_CALLED_HERE  # the documented list stays true
    assert {
        "ecs:DescribeTasks",
        "ecs:ListTasks",
        "cloudwatch:DescribeAlarms",
        "ecs:CreateService",
    } <= recorded
