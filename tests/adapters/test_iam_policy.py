"""The ``iam-policy`` outputs cover exactly the AWS actions bootstrap, deploy and rollback call.

A ``before-call`` hook on the session records every call (as IAM actions) while the
orders service is bootstrapped, then deployed (first release, a promoted canary, a canary
failed by an alarm, a slot that never becomes ready, with a stopped task to explain) and
rolled back. The deploy policy must allow each action the deployments called, and nothing
else beyond the short documented lists; the bootstrap policy each action bootstrap called.
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
    "dynamodb:ConditionCheckItem",  # DynamoStateStore.commit(fence=...): the lease check of a commit
}
# ECR actions beyond repository creation are the image push and resolve of `pipeline push`
# and `pipeline deploy --ref` (the ECR adapter's own tests exercise them).
REPOSITORY_ACTIONS = frozenset(
    {"ecr:DescribeRepositories", "ecr:CreateRepository", "ecr:PutLifecyclePolicy", "ecr:GetLifecyclePolicy"}
)  # `pipeline push` creates or converges its repository (EcrRegistry.ensure_repository)
ECR_IMAGE_ACTIONS = frozenset(ecr.IAM_ACTIONS) - REPOSITORY_ACTIONS


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
    set_alarm("orders-5xx", "OK")  # a configured alarm must exist to gate the analysis
    log = CallLog().attach(session)

    bootstrap(session, ecs_env, spec, clock)
    bootstrapped = frozenset(log.actions)
    log.actions.clear()
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
    deployed = frozenset(log.actions)

    kinds = ServiceKinds(ecs=("orders",))
    allowed = policy_actions(policy(ecs_env, kinds))
    assert deployed - allowed == set(), "called by a deployment but not allowed to the deploy role"
    unused = allowed - deployed
    assert unused - NOT_CALLED_HERE - ECR_IMAGE_ACTIONS - REPOSITORY_ACTIONS == set(), "allowed, never called"
    assert allowed >= NOT_CALLED_HERE  # the documented list stays true
    assert {"ecs:DescribeTasks", "ecs:ListTasks", "cloudwatch:DescribeAlarms", "ecs:UpdateService"} <= (
        deployed
    )

    humans = policy_actions(policy(ecs_env, kinds, kind="bootstrap"))
    assert bootstrapped - humans == set(), "called by bootstrap but not allowed to the bootstrap policy"
    assert humans - bootstrapped - allowed - NOT_CALLED_HERE == set(), "allowed to bootstrap, never called"
    assert {"ecs:CreateService", "elasticloadbalancing:CreateRule", "dynamodb:CreateTable"} <= bootstrapped
    assert not {"ecs:CreateService", "elasticloadbalancing:CreateRule", "dynamodb:CreateTable"} & allowed
