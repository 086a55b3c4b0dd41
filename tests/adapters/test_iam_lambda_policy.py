"""The two ``iam-policy`` documents of a Lambda project against what its adapters call.

Every call is recorded (as IAM actions) while a Lambda service is bootstrapped (execution
role, function, aliases, HTTP API) and then deployed twice through the engine on moto.
The bootstrap policy must allow what bootstrap called; the deploy policy what the
deployments called, and no IAM write (bootstrap creates the role; a deployment only
passes it).
"""
# ruff: noqa: F401, F811 - the ``lambda_aws`` fixture is imported, then requested by name

from __future__ import annotations

from typing import Any

from pipeline.aws.iam import ServiceKinds, iam_actions_of_call, policy, policy_actions
from pipeline.aws.settings import AwsEnvironment
from pipeline.core.model import ServiceRef
from pipeline.core.state import Phase
from pipeline.operations import deploy
from pipeline.testing import release
from tests.adapters.support.lambda_world import ACCOUNT, LambdaWorld, canary_strategy, lambda_aws

REF = ServiceRef("orders", "dev")


class Recorder:
    def __init__(self) -> None:
        self.actions: set[str] = set()
        self.paused = False  # while the test itself calls AWS (metrics a data plane would send)

    def __call__(self, model: Any, params: Any = None, **_: Any) -> None:
        if self.paused:
            return
        signing = model.service_model.signing_name
        method = str(model.http.get("method", ""))
        self.actions |= iam_actions_of_call(signing, model.name, params, http_method=method)


def test_bootstrap_and_deploy_policies_allow_what_each_calls(lambda_aws: LambdaWorld) -> None:
    recorder = Recorder()
    lambda_aws.session.on("before-call", recorder)
    spec = lambda_aws.spec()

    lambda_aws.bootstrap(spec)
    bootstrapped = frozenset(recorder.actions)
    recorder.actions.clear()
    ctx, _, _ = lambda_aws.context(lambda_aws.platform(spec))
    assert deploy(ctx, REF, release("v1"), canary_strategy()).phase is Phase.SUCCEEDED
    lambda_aws.write_code("{'statusCode': 200, 'body': 'v2'}")
    recorder.paused = True
    lambda_aws.put_metrics("orders-dev", "3", invocations=50)
    lambda_aws.put_metrics("orders-dev", "2", invocations=200)
    recorder.paused = False
    assert deploy(ctx, REF, release("v2"), canary_strategy()).phase is Phase.SUCCEEDED
    deployed = frozenset(recorder.actions)

    env = AwsEnvironment("dev", spec.region, ACCOUNT, "", "", "", "pipeline-state")
    kinds = ServiceKinds(lambda_=("orders",))
    for_deploy = policy_actions(policy(env, kinds))
    for_bootstrap = policy_actions(policy(env, kinds, kind="bootstrap"))

    assert {"iam:CreateRole", "iam:PutRolePolicy", "lambda:CreateFunction"} <= bootstrapped
    assert bootstrapped - for_bootstrap == set(), "bootstrap called what its policy does not allow"
    assert {"lambda:UpdateFunctionCode", "lambda:PublishVersion", "lambda:UpdateAlias"} <= deployed
    assert deployed - for_deploy == set(), "a deployment called what the deploy policy does not allow"
    assert not {a for a in for_deploy if a.startswith("iam:")} - {"iam:PassRole"}
