"""A service's ``api:`` edge on AWS: its keys, its cache flushed by deployments, its IAM.

Against the moto server over HTTP (with the realism layer): the keys command's port
creates, lists and revokes API Gateway keys; a deployment through the engine moves the
``live`` alias and flushes the stage cache once per move; the IAM policies cover exactly
the calls made. FlushStageCache is not implemented by the test endpoint (it answers 404
"Not yet implemented"): it is answered as AWS documents (Stubber or a botocore hook).
"""
# ruff: noqa: F401, F811 - the ``lambda_aws`` fixture is imported, then requested by name

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from pipeline.aws.apigw.bootstrap import plan_edge
from pipeline.aws.apigw.cache import CacheFlushingRouter, StageCache
from pipeline.aws.apigw.spec import (
    STAGE,
    LambdaTarget,
)
from pipeline.aws.bootstrap import execute
from pipeline.aws.iam import ServiceKinds, iam_actions_of_call, policy, policy_actions
from pipeline.aws.settings import AwsEnvironment
from pipeline.core.edge import IssuedKey
from pipeline.core.errors import NotFoundError, PlatformError, UsageError
from pipeline.core.model import ServiceRef, Weights
from pipeline.core.state import Phase
from pipeline.operations import deploy
from pipeline.testing import release
from tests.adapters.support.api_edge import Split, bootstrapped, edge, keys_of, writes
from tests.adapters.support.lambda_world import ACCOUNT, LambdaWorld, canary_strategy, lambda_aws

# --- keys ---------------------------------------------------------------------------------


def test_keys_are_created_once_listed_without_values_revoked_and_mistakes_refused(
    lambda_aws: LambdaWorld,
) -> None:
    spec = edge(lambda_aws)
    bootstrapped(lambda_aws, spec)
    keys = keys_of(lambda_aws, spec)
    client = lambda_aws.session.client("apigateway")

    issued = keys.create("orders", "alice", None)  # the default plan
    bob = keys.create("orders", "bob", "free")
    assert len(issued.secret) >= 20 and issued.key.hint == issued.secret[:4] and issued.key.plan == "partner"
    partner = next(p for p in client.get_usage_plans()["items"] if p["name"] == "orders-dev-partner")
    bound = client.get_usage_plan_keys(usagePlanId=partner["id"])["items"]
    assert [k["id"] for k in bound] == [issued.key.id]

    lambda_aws.calls.clear()
    listed = keys.list("orders")
    assert [(k.name, k.plan, k.hint, k.active) for k in listed] == [
        ("alice", "partner", issued.secret[:4], True),
        ("bob", "free", bob.secret[:4], True),
    ]
    assert [p["includeValues"] for p in lambda_aws.calls.named("GetApiKeys")] == [False]
    assert issued.secret not in repr(listed)

    revoked = keys.revoke("orders", "alice")
    assert revoked.revoked is not None and not revoked.active
    assert client.get_api_key(apiKey=issued.key.id)["enabled"] is False  # API Gateway refuses it now
    lambda_aws.calls.clear()
    assert keys.revoke("orders", "alice").revoked == revoked.revoked  # again: unchanged
    assert writes(lambda_aws) == []
    assert [k.active for k in keys.list("orders")] == [False, True]

    # mistakes: refused with what to do
    with pytest.raises(UsageError, match="already has a key named 'alice'"):
        keys.create("orders", "alice", None)
    with pytest.raises(UsageError, match=r"no usage plan 'gold'.*free, partner"):
        keys.create("orders", "carol", "gold")
    with pytest.raises(NotFoundError, match="no key named 'nobody'"):
        keys.revoke("orders", "nobody")
    with pytest.raises(UsageError, match="has no api: block"):
        keys.list("payments")


def test_a_key_no_plan_accepts_is_disabled_again(lambda_aws: LambdaWorld) -> None:
    """The plan vanishes between the lookup and the binding: the key must not stay usable.

    AWS answers CreateUsagePlanKey on a deleted plan with 404 NotFoundException
    (https://docs.aws.amazon.com/apigateway/latest/api/API_CreateUsagePlanKey.html#API_CreateUsagePlanKey_Errors);
    the test endpoint binds keys to plans it does not have, so the hook answers as AWS does.
    """
    spec = edge(lambda_aws)
    bootstrapped(lambda_aws, spec)
    client = lambda_aws.session.client("apigateway")

    def plan_gone(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Code": "NotFoundException", "Message": "Invalid Usage Plan ID specified"}
        return AWSResponse("https://apigateway", 404, {}, None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 404},
        }

    client.meta.events.register_first("before-call.api-gateway.CreateUsagePlanKey", plan_gone)
    with pytest.raises(PlatformError, match="add the API key alice to the usage plan partner"):
        keys_of(lambda_aws, spec).create("orders", "alice", None)
    client.meta.events.unregister("before-call.api-gateway.CreateUsagePlanKey", plan_gone)

    [key] = [k for k in client.get_api_keys(includeValues=False)["items"] if k["name"] == "orders-dev-alice"]
    assert key["enabled"] is False
    assert [k.active for k in keys_of(lambda_aws, spec).list("orders")] == [False]  # listed as revoked


def test_bootstrap_issues_declared_keys_once_and_leaves_the_others_alone(lambda_aws: LambdaWorld) -> None:
    plans = {"partner": {"rate": "20/s", "burst": 40, "quota": "10000/day", "keys": ["acme", "globex"]},
             "free": {"rate": 2}}
    spec = edge(lambda_aws, plans=plans)
    bootstrapped(lambda_aws, spec)  # no reveal: declared keys are not planned
    keys = keys_of(lambda_aws, spec)
    adhoc = keys.create("orders", "adhoc", "free")
    client = lambda_aws.session.client("apigateway")

    shown: list[IssuedKey] = []
    planned = plan_edge(lambda_aws.session, spec, reveal=shown.append)
    assert [(st.action, st.name) for st in planned if st.kind == "api key"] == [
        ("create", "orders-dev-acme"), ("create", "orders-dev-globex"),
    ]
    lambda_aws.calls.clear()
    execute(planned)
    created = ["apigateway:CreateApiKey"] * 2 + ["apigateway:CreateUsagePlanKey"] * 2
    assert sorted(writes(lambda_aws)) == created
    assert [(i.key.name, i.key.plan) for i in shown] == [("acme", "partner"), ("globex", "partner")]
    partner = next(p for p in client.get_usage_plans()["items"] if p["name"] == "orders-dev-partner")
    bound = {k["id"] for k in client.get_usage_plan_keys(usagePlanId=partner["id"])["items"]}
    assert bound == {i.key.id for i in shown}
    for issued in shown:  # API Gateway holds the secret; the tags only its hint
        stored = client.get_api_key(apiKey=issued.key.id, includeValue=True)
        assert stored["value"] == issued.secret and issued.secret not in repr(stored["tags"])

    # a second bootstrap: everything exists, nothing written, no secret shown
    again: list[IssuedKey] = []
    lambda_aws.calls.clear()
    second = plan_edge(lambda_aws.session, spec, reveal=again.append)
    assert {st.action for st in second} == {"exists"}
    assert execute(second) == [] and writes(lambda_aws) == [] and again == []

    # a revoked declared key is reported, not re-enabled; the ad-hoc key is untouched
    keys.revoke("orders", "acme")
    lambda_aws.calls.clear()
    third = plan_edge(lambda_aws.session, spec, reveal=again.append)
    assert [st.name for st in third if st.kind == "api key"] == [
        "orders-dev-acme (disabled: revoked keys stay revoked; declare a new name for a replacement)",
        "orders-dev-globex",
    ]
    assert execute(third) == [] and writes(lambda_aws) == [] and again == []
    assert client.get_api_key(apiKey=adhoc.key.id)["enabled"] is True

    # declaring the ad-hoc key on another plan than its own: reported, not moved
    moved = edge(lambda_aws, plans={**plans, "partner": {**plans["partner"], "keys": ["globex", "adhoc"]}})
    steps = plan_edge(lambda_aws.session, moved, reveal=again.append)
    assert [st.name for st in steps if st.kind == "api key" and st.name.startswith("orders-dev-adhoc")] == [
        "orders-dev-adhoc (on plan free, declared on partner: revoke it and declare a new name)"
    ]


# --- the cache flushed by a deployment -------------------------------------------------------


def test_a_change_of_the_split_flushes_the_stage_cache_once(lambda_aws: LambdaWorld) -> None:
    spec, api_id = edge(lambda_aws), "abc123"
    client = lambda_aws.session.client("apigateway")
    router = CacheFlushingRouter(Split(), StageCache(client, spec))
    # FlushStageCache answers 202 with an empty body
    # (https://docs.aws.amazon.com/apigateway/latest/api/API_FlushStageCache.html)
    with Stubber(client) as stub:
        stub.add_response("get_rest_apis", {"items": [{"id": api_id, "name": "orders-dev"}]}, {"limit": 500})
        stub.add_client_error(
            "flush_stage_cache",
            "TooManyRequestsException",
            http_status_code=429,
            expected_params={"restApiId": api_id, "stageName": STAGE},
        )
        stub.add_response("flush_stage_cache", {}, {"restApiId": api_id, "stageName": STAGE})
        stub.add_response("flush_stage_cache", {}, {"restApiId": api_id, "stageName": STAGE})

        with pytest.raises(Exception, match="TooManyRequests"):
            router.set_weights(Weights(90, 10))  # the split moved; the flush failed
        router.set_weights(Weights(90, 10))  # already set, but the flush is still owed
        router.set_weights(Weights(90, 10))  # nothing changed, nothing owed: no call
        router.set_weights(Weights(0, 100))
        stub.assert_no_pending_responses()


def test_without_a_rest_api_or_stage_there_is_nothing_to_flush(lambda_aws: LambdaWorld) -> None:
    """An api: block added after bootstrap ran: the deployment moves traffic, no cache exists."""
    spec = edge(lambda_aws)
    client = lambda_aws.session.client("apigateway")
    router = CacheFlushingRouter(Split(), StageCache(client, spec))

    router.set_weights(Weights(90, 10))  # no REST API on the endpoint: no error
    assert router.get_weights() == Weights(90, 10) and not router.owed
    with Stubber(client) as stub:  # the API exists, its stage not yet
        stub.add_response(
            "get_rest_apis", {"items": [{"id": "abc123", "name": "orders-dev"}]}, {"limit": 500}
        )
        stub.add_client_error(
            "flush_stage_cache", "NotFoundException", "Invalid stage identifier specified", 404
        )
        assert StageCache(client, spec).flush() is False


# --- IAM: the policies cover exactly the calls --------------------------------------------------


class Recorder:
    """IAM actions of every call, recorded before the parameters are built (an event every
    call emits, Stubbed ones too: a Stubber answers ``before-call`` first)."""

    def __init__(self) -> None:
        self.actions: set[str] = set()

    def __call__(self, model: Any, params: Any = None, **_: Any) -> None:
        method = str(model.http.get("method", ""))
        self.actions |= iam_actions_of_call(
            model.service_model.signing_name, model.name, params, http_method=method
        )


def test_the_policies_allow_exactly_what_bootstrap_keys_and_a_deployment_call(
    lambda_aws: LambdaWorld,
) -> None:
    spec = edge(lambda_aws)
    lambda_aws.bootstrap(lambda_aws.spec())
    recorder = Recorder()
    lambda_aws.session.on("before-parameter-build", recorder)
    execute(plan_edge(lambda_aws.session, spec))
    execute(plan_edge(lambda_aws.session, edge(lambda_aws, deny_cidrs=[], plans={"partner": {"rate": 5}})))
    keys = keys_of(lambda_aws, spec)
    keys.create("orders", "alice", None)
    keys.list("orders")
    keys.revoke("orders", "alice")
    by_bootstrap = frozenset(recorder.actions)
    recorder.actions.clear()
    client = lambda_aws.session.client("apigateway")
    with Stubber(client) as stub:
        stub.add_response(
            "get_rest_apis", {"items": [{"id": "abc123", "name": "orders-dev"}]}, {"limit": 500}
        )
        stub.add_response("flush_stage_cache", {}, {"restApiId": "abc123", "stageName": STAGE})
        CacheFlushingRouter(Split(), StageCache(client, spec)).set_weights(Weights(50, 50))
    by_deploy = frozenset(recorder.actions)

    env = AwsEnvironment("dev", spec.region, ACCOUNT, "", "", "", "pipeline-state")
    kinds = ServiceKinds(lambda_=("orders",), edge=("orders",))
    lambda_only = ServiceKinds(lambda_=("orders",))
    deploy_edge = policy_actions(policy(env, kinds)) - policy_actions(policy(env, lambda_only))
    bootstrap_edge = policy_actions(policy(env, kinds, kind="bootstrap")) - policy_actions(
        policy(env, lambda_only, kind="bootstrap")
    )

    assert by_deploy == {"apigateway:GET", "apigateway:DELETE"}
    assert by_deploy <= policy_actions(policy(env, kinds))
    assert deploy_edge == {"apigateway:DELETE"}  # GET the Lambda deploy policy has already
    assert by_bootstrap <= policy_actions(policy(env, kinds, kind="bootstrap"))
    apigateway_calls = {a for a in by_bootstrap | by_deploy if a.startswith("apigateway:")}
    ecs_only = {
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeListeners",
    }  # the VPC link's ALB: an ECS service's edge
    assert bootstrap_edge - ecs_only == apigateway_calls - {"apigateway:GET", "apigateway:POST"}  # Lambda's


def test_edge_grants_are_scoped_to_api_gateway_paths_and_the_stage_cache() -> None:
    env = AwsEnvironment("dev", "eu-west-1", ACCOUNT, "", "", "", "pipeline-state")
    kinds = ServiceKinds(ecs=("orders",), edge=("orders",))
    for kind in ("deploy", "bootstrap"):
        for st in policy(env, kinds, kind=kind)["Statement"]:
            if any(a.startswith("apigateway:") for a in st["Action"]):
                found = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
                assert "*" not in found and all(
                    r.startswith("arn:aws:apigateway:eu-west-1::/") for r in found
                )
    deploy = [
        st for st in policy(env, kinds)["Statement"] if any(a.startswith("apigateway:") for a in st["Action"])
    ]
    assert {a for st in deploy for a in st["Action"]} == {"apigateway:GET", "apigateway:DELETE"}
    delete = next(st for st in deploy if "apigateway:DELETE" in st["Action"])
    assert delete["Resource"] == "arn:aws:apigateway:eu-west-1::/restapis/*/stages/live/cache/data"


# --- a deployment through the engine: the alias moves the traffic, the cache is flushed ------


def test_a_canary_behind_the_edge_shifts_the_alias_and_flushes_the_cache_per_step(
    lambda_aws: LambdaWorld,
) -> None:
    """The REST API invokes ``live`` throughout; each weight the engine moves on the alias
    flushes the stage cache once (FlushStageCache answered as AWS documents: 202, empty)."""
    spec = edge(lambda_aws)
    api_id = bootstrapped(lambda_aws, spec)
    client = lambda_aws.session.client("apigateway")
    flushed: list[str] = []

    def flush(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        flushed.append(params["url_path"])
        return AWSResponse("https://apigateway", 202, {}, None), {"ResponseMetadata": {"HTTPStatusCode": 202}}

    client.meta.events.register_first("before-call.api-gateway.FlushStageCache", flush)
    inner = lambda_aws.platform(lambda_aws.spec())
    platform = replace(inner, router=CacheFlushingRouter(inner.router, StageCache(client, spec)))
    ctx, _, _ = lambda_aws.context(platform)
    assert deploy(ctx, ServiceRef("orders", "dev"), release("v1"), canary_strategy()).phase is Phase.SUCCEEDED
    lambda_aws.write_code("{'statusCode': 200, 'body': 'v2'}")
    lambda_aws.put_metrics("orders-dev", "3", invocations=50)
    lambda_aws.put_metrics("orders-dev", "2", invocations=200)
    flushed.clear()
    lambda_aws.calls.clear()

    final = deploy(ctx, ServiceRef("orders", "dev"), release("v2"), canary_strategy())

    assert final.phase is Phase.SUCCEEDED, final.reason
    shifts = [p for p in lambda_aws.calls.named("UpdateAlias") if p["Name"] == "live"]
    assert len(shifts) == 3 and flushed == [f"/restapis/{api_id}/stages/live/cache/data"] * 3
    resources = client.get_resources(restApiId=api_id, embed=["methods"])["items"]
    uris = {
        m["methodIntegration"]["uri"] for r in resources for m in (r.get("resourceMethods") or {}).values()
    }
    assert uris == {spec.lambda_uri(LambdaTarget("orders-dev"))}  # the stage still invokes the alias
    assert (
        lambda_aws.session.client("lambda").get_alias(FunctionName="orders-dev", Name="live")[
            "FunctionVersion"
        ]
        == "3"
    )
