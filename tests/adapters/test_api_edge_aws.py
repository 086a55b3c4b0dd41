"""A service's ``api:`` edge on AWS: the REST API that bootstrap creates and converges.

Against the moto server over HTTP (with the realism layer: lists reversed, request
values checked against the service model): bootstrap creates the REST API, its resource
policy, resources and methods (API key required), the Lambda proxy integration on the
alias (or, for an ECS service, the VPC link to the ALB), the stage with its cache
settings and the usage plans, then a second run writes nothing; a changed block
converges. Keys, the cache flush and IAM: test_api_edge_aws_keys.py.
"""
# ruff: noqa: F401, F811 - the ``lambda_aws`` fixture is imported, then requested by name

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from pipeline.app import App
from pipeline.aws.apigw.bootstrap import plan_edge
from pipeline.aws.apigw.cache import CacheFlushingRouter
from pipeline.aws.apigw.spec import (
    STAGE,
    AlbTarget,
    EdgeSpec,
    resource_policy,
    same_policy,
)
from pipeline.aws.apigw.vpc_link import VpcLinks
from pipeline.aws.bootstrap import execute
from pipeline.aws.iam import policy_actions
from pipeline.aws.session import AwsSession, SessionSettings
from pipeline.aws.settings import AwsEnvironment
from pipeline.cli.main import main
from pipeline.config.api import ApiConfig
from pipeline.core.errors import PlatformError
from pipeline.testing import FakeClock
from tests.adapters.support.api_edge import BLOCK, WRITES, bootstrapped, edge, writes
from tests.adapters.support.ecs import create_infrastructure, write_project
from tests.adapters.support.lambda_world import Calls, LambdaWorld, lambda_aws

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)


# --- bootstrap ---------------------------------------------------------------------------


def test_bootstrap_creates_the_rest_api_then_a_second_run_writes_nothing(lambda_aws: LambdaWorld) -> None:
    """One bootstrap (it takes seconds on the test endpoint), checked by the sentences below."""
    spec = edge(lambda_aws)
    lambda_aws.bootstrap(lambda_aws.spec())
    planned = plan_edge(lambda_aws.session, spec)
    assert {st.action for st in planned} == {"create"}
    assert [(st.kind, st.name) for st in planned] == [
        ("rest api", "orders-dev"),
        ("api resource", "/orders"),
        ("api resource", "/orders/{proxy+}"),
        ("api method", "ANY /orders"),
        ("api method", "GET /orders"),
        ("api method", "ANY /orders/{proxy+}"),
        ("api method", "GET /orders/{proxy+}"),
        ("invoke permission", "orders-dev:live"),
        ("api deployment", "orders-dev/live"),
        ("stage cache", "orders-dev/live"),
        ("usage plan", "orders-dev-free"),
        ("usage plan", "orders-dev-partner"),
    ]
    lambda_aws.calls.clear()
    execute(planned)  # the plan made before anything existed
    api_id = next(a["id"] for a in lambda_aws.session.client("apigateway").get_rest_apis()["items"])
    methods_require_a_key_and_invoke_the_functions_alias(lambda_aws, api_id)
    the_stage_caches_the_get_methods_with_the_ttl(lambda_aws, api_id)
    usage_plans_throttle_and_cap_each_key_on_the_stage(lambda_aws, api_id)
    the_resource_policy_admits_allow_cidrs_and_refuses_deny_cidrs(lambda_aws, api_id)

    # the second run: every step exists, nothing is written
    lambda_aws.calls.clear()
    again = plan_edge(lambda_aws.session, spec)
    assert {st.action for st in again} == {"exists"}, [st for st in again if st.action != "exists"]
    assert execute(again) == []
    assert writes(lambda_aws) == []


def methods_require_a_key_and_invoke_the_functions_alias(lambda_aws: LambdaWorld, api_id: str) -> None:
    client = lambda_aws.session.client("apigateway")

    resources = {r["path"]: r for r in client.get_resources(restApiId=api_id, embed=["methods"])["items"]}
    proxy = resources["/orders/{proxy+}"]["resourceMethods"]
    assert set(proxy) == {"ANY", "GET"} and set(resources["/orders"]["resourceMethods"]) == {"ANY", "GET"}
    uri = (
        "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/"
        "arn:aws:lambda:eu-west-1:123456789012:function:orders-dev:live/invocations"
    )
    for verb in ("ANY", "GET"):
        method = client.get_method(
            restApiId=api_id, resourceId=resources["/orders/{proxy+}"]["id"], httpMethod=verb
        )
        assert method["apiKeyRequired"] is True
        assert method["methodIntegration"]["type"] == "AWS_PROXY"
        assert method["methodIntegration"]["uri"] == uri  # the alias the deployment shifts
    # the cached GET: the proxy path, the header and the query parameter make the cache key
    # (the test endpoint does not store cacheKeyParameters: the request is what is checked)
    sent = [p for p in lambda_aws.calls.named("PutIntegration") if p["httpMethod"] == "GET"]
    assert {tuple(p["cacheKeyParameters"]) for p in sent} == {
        (
            "method.request.header.accept-language",
            "method.request.path.proxy",
            "method.request.querystring.page",
        ),
        ("method.request.header.accept-language", "method.request.querystring.page"),
    }
    assert all(
        "cacheKeyParameters" not in p
        for p in lambda_aws.calls.named("PutIntegration")
        if p["httpMethod"] == "ANY"
    )  # a POST through ANY is never cached

    permission = json.loads(
        lambda_aws.session.client("lambda").get_policy(FunctionName="orders-dev", Qualifier="live")["Policy"]
    )
    statement = next(s for s in permission["Statement"] if s["Sid"] == f"pipeline-rest-{api_id}")
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert api_id in json.dumps(statement["Condition"])


def the_stage_caches_the_get_methods_with_the_ttl(lambda_aws: LambdaWorld, api_id: str) -> None:
    stage = lambda_aws.session.client("apigateway").get_stage(restApiId=api_id, stageName=STAGE)

    assert stage["cacheClusterEnabled"] is True and stage["cacheClusterSize"] == "0.5"
    cached = {k: (v["cachingEnabled"], v["cacheTtlInSeconds"]) for k, v in stage["methodSettings"].items()}
    assert cached == {"~1orders/GET": (True, 30), "~1orders~1{proxy+}/GET": (True, 30)}


def usage_plans_throttle_and_cap_each_key_on_the_stage(lambda_aws: LambdaWorld, api_id: str) -> None:
    plans = {p["name"]: p for p in lambda_aws.session.client("apigateway").get_usage_plans()["items"]}

    partner, free = plans["orders-dev-partner"], plans["orders-dev-free"]
    assert partner["apiStages"] == [{"apiId": api_id, "stage": STAGE}]
    assert partner["throttle"] == {"rateLimit": 20.0, "burstLimit": 40}
    assert partner["quota"] == {"limit": 10000, "period": "DAY", "offset": 0} or partner["quota"] == {
        "limit": 10000,
        "period": "DAY",
    }
    assert free["throttle"] == {"rateLimit": 2.0, "burstLimit": 2} and not free.get("quota")


def test_a_changed_block_converges_and_the_rest_stays(lambda_aws: LambdaWorld) -> None:
    api_id = bootstrapped(lambda_aws, edge(lambda_aws))
    deny = ["10.9.0.0/16", "10.8.0.0/16"]
    changed = edge(lambda_aws, deny_cidrs=deny)

    steps = plan_edge(lambda_aws.session, changed)
    assert [(st.kind, st.action) for st in steps if st.action == "create"] == [
        ("resource policy", "create"),
        ("api deployment", "create"),
    ]  # a policy applies once deployed
    lambda_aws.calls.clear()
    execute(steps)
    assert [n.split(":")[1] for n in writes(lambda_aws)] == ["UpdateRestApi", "CreateDeployment"]
    stored = lambda_aws.session.client("apigateway").get_rest_api(restApiId=api_id)["policy"]
    assert same_policy(stored, resource_policy(changed.api), api_id)

    # plans and cache
    plans = {"partner": {"rate": "50/s", "burst": 100, "quota": "20000/day"}, "free": {"rate": 2}}
    changed = edge(lambda_aws, plans=plans, cache={**BLOCK["cache"], "ttl": "60s"}, deny_cidrs=deny)

    steps = plan_edge(lambda_aws.session, changed)
    assert [(st.kind, st.name) for st in steps if st.action == "create"] == [
        ("stage cache", "orders-dev/live"),
        ("usage plan", "orders-dev-partner"),
    ]
    execute(steps)
    assert {st.action for st in plan_edge(lambda_aws.session, changed)} == {"exists"}
    partner = next(
        p
        for p in lambda_aws.session.client("apigateway").get_usage_plans()["items"]
        if p["name"] == "orders-dev-partner"
    )
    assert partner["throttle"] == {"rateLimit": 50.0, "burstLimit": 100}
    assert partner["quota"]["limit"] == 20000


def test_switching_keys_on_patches_the_existing_methods_and_their_cache_keys(lambda_aws: LambdaWorld) -> None:
    """``keys: required`` set after the methods exist must make API Gateway ask for keys.

    The test endpoint does not implement UpdateMethod/UpdateIntegration: a hook answers
    them as AWS documents (200 with the resource;
    https://docs.aws.amazon.com/apigateway/latest/api/API_UpdateMethod.html) and keeps the
    patch operations sent.
    """
    bootstrapped(lambda_aws, edge(lambda_aws, keys="optional"))
    cache = {"ttl": "30s", "key": {"headers": ["accept-language", "x-tenant"], "query": ["page"]}}
    changed = edge(lambda_aws, cache=cache)
    client = lambda_aws.session.client("apigateway")
    patched: list[tuple[str, str, str]] = []

    def answer(model: Any, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        verb = str(re.findall(r"/methods/([A-Z]+)", params["url_path"])[0])
        patched.append((model.name, verb, json.dumps(json.loads(params["body"])["patchOperations"])))
        answered = {"httpMethod": verb, "ResponseMetadata": {"HTTPStatusCode": 200}}
        return AWSResponse("https://apigateway", 200, {}, None), answered

    steps = plan_edge(lambda_aws.session, changed)
    assert [st.name for st in steps if st.kind == "api method" and st.action == "create"] == [
        "ANY /orders",
        "GET /orders",
        "ANY /orders/{proxy+}",
        "GET /orders/{proxy+}",
    ]
    assert ("api deployment", "create") in [(st.kind, st.action) for st in steps]
    for operation in ("UpdateMethod", "UpdateIntegration"):
        client.meta.events.register_first(f"before-call.api-gateway.{operation}", answer)
    lambda_aws.calls.clear()
    execute(steps)

    assert lambda_aws.calls.named("PutMethod") == []  # a method that exists is patched, not put again
    key_on = {"op": "replace", "path": "/apiKeyRequired", "value": "true"}
    tenant = "method.request.header.x-tenant"
    add_parameter = {"op": "add", "path": f"/requestParameters/{tenant}", "value": "false"}
    add_cache_key = {"op": "add", "path": f"/cacheKeyParameters/{tenant}"}
    assert sorted(patched) == sorted(
        [
            ("UpdateMethod", "ANY", json.dumps([key_on])),
            ("UpdateMethod", "ANY", json.dumps([key_on])),
            ("UpdateMethod", "GET", json.dumps([key_on, add_parameter])),
            ("UpdateMethod", "GET", json.dumps([key_on, add_parameter])),
            ("UpdateIntegration", "GET", json.dumps([add_cache_key])),
            ("UpdateIntegration", "GET", json.dumps([add_cache_key])),
        ]
    )


# --- the resource policy -------------------------------------------------------------------


def the_resource_policy_admits_allow_cidrs_and_refuses_deny_cidrs(
    lambda_aws: LambdaWorld, api_id: str
) -> None:
    stored = lambda_aws.session.client("apigateway").get_rest_api(restApiId=api_id)["policy"]

    statements = json.loads(stored)["Statement"]
    assert [s["Effect"] for s in statements] == ["Allow", "Deny", "Deny"]
    assert all(s["Action"] == "execute-api:Invoke" and s["Resource"] == "execute-api:/*" for s in statements)
    outside, denied = statements[1]["Condition"], statements[2]["Condition"]
    assert outside == {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]}}
    assert denied == {"IpAddress": {"aws:SourceIp": ["10.9.0.0/16"]}}  # wins over the allow list


def test_a_rest_api_of_the_same_name_made_by_someone_else_is_refused(lambda_aws: LambdaWorld) -> None:
    lambda_aws.session.client("apigateway").create_rest_api(name="orders-dev", tags={"team": "payments"})

    with pytest.raises(PlatformError, match="not made by pipeline for orders in dev"):
        plan_edge(lambda_aws.session, edge(lambda_aws))


def test_the_policy_aws_returns_escaped_and_expanded_reads_as_the_same() -> None:
    """API Gateway returns the policy with escaped quotes and ``execute-api:/*`` expanded to
    the API's ARN (localstack/localstack#3325, go-to-k/cdk-real-drift#721); that is not a change."""
    api = ApiConfig.model_validate(BLOCK)
    wanted = resource_policy(api)
    arn = "arn:aws:execute-api:eu-west-1:123456789012:abc123/*"
    as_returned = json.dumps(json.loads(json.dumps(wanted).replace('"execute-api:/*"', json.dumps(arn))))
    escaped = as_returned.replace('"', '\\"')

    assert same_policy(escaped, wanted, "abc123")
    assert not same_policy(
        escaped, resource_policy(ApiConfig.model_validate({**BLOCK, "deny_cidrs": []})), "abc123"
    )


# --- an ECS service: the REST API in front of the ALB, through a VPC link --------------------


def test_an_ecs_service_is_reached_through_a_vpc_link_to_the_alb(aws: str) -> None:
    env = create_infrastructure()
    session = AwsSession(SessionSettings(region=env.region, max_attempts=1))
    calls = Calls()
    session.on("provide-client-params", calls.record)
    api = ApiConfig.model_validate({"keys": "required", "plans": {"partner": {"rate": 5}}})
    target = AlbTarget(env.listener_arn, "pipeline-aws-test", env.subnets, env.security_groups)
    spec = EdgeSpec("orders", "aws-test", "aws", env.region, env.account, "/orders*", api, target)

    planned = plan_edge(session, spec)
    assert ("vpc link", "pipeline-aws-test") in [(st.kind, st.name) for st in planned]
    execute(planned)

    [link] = session.client("apigatewayv2").get_vpc_links()["Items"]
    assert link["Name"] == "pipeline-aws-test" and link["SubnetIds"] == list(env.subnets)
    dns = session.client("elbv2").describe_load_balancers()["LoadBalancers"][0]["DNSName"]
    sent = {p["resourceId"]: p for p in calls.named("PutIntegration")}
    assert {p["uri"] for p in sent.values()} == {f"http://{dns}/orders", f"http://{dns}/orders/{{proxy}}"}
    for integration in sent.values():
        assert integration["type"] == "HTTP_PROXY" and integration["connectionType"] == "VPC_LINK"
        assert integration["connectionId"] == link["VpcLinkId"]
        assert integration["integrationTarget"] == target.load_balancer_arn  # the ALB splits the slots
    proxied = next(p for p in sent.values() if p["uri"].endswith("{proxy}"))
    assert proxied["requestParameters"] == {"integration.request.path.proxy": "method.request.path.proxy"}

    on_8080 = AlbTarget(env.test_listener_arn, "pipeline-aws-test", env.subnets, env.security_groups)
    assert VpcLinks(session, FakeClock()).base_url(on_8080) == f"http://{dns}:8080"  # a listener's own port

    calls.clear()
    again = plan_edge(session, spec)
    assert {st.action for st in again} == {"exists"} and execute(again) == []
    assert [n for n, _ in calls.made if n.split(":")[1].startswith(WRITES)] == []


def link_answer(status: str, message: str = "") -> dict[str, Any]:
    """GetVpcLink as AWS answers it
    (https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/vpclinks-vpclinkid.html)."""
    return {
        "VpcLinkId": "abc123",
        "Name": "pipeline-aws-test",
        "SubnetIds": ["subnet-1"],
        "SecurityGroupIds": ["sg-1"],
        "VpcLinkStatus": status,
        "VpcLinkStatusMessage": message,
        "VpcLinkVersion": "V2",
    }


@pytest.mark.parametrize(
    ("statuses", "outcome"),
    [
        (["PENDING", "PENDING", "AVAILABLE"], "available"),
        (["PENDING", "FAILED"], "FAILED (subnet-1 is in an unsupported availability zone)"),
    ],
)
def test_a_new_vpc_link_is_waited_for_until_it_is_available(
    aws: str, statuses: list[str], outcome: str
) -> None:
    """The test endpoint makes links AVAILABLE at once; AWS takes minutes, or fails."""
    session = AwsSession(SessionSettings(region="eu-west-1", max_attempts=1))
    clock = FakeClock()
    links = VpcLinks(session, clock)
    target = AlbTarget(
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/1/2",
        "pipeline-aws-test",
        ("subnet-1",),
        ("sg-1",),
    )
    with Stubber(links.client) as stub:
        stub.add_response("get_vpc_links", {"Items": []}, {})
        stub.add_response(
            "create_vpc_link",
            link_answer("PENDING"),
            {
                "Name": "pipeline-aws-test",
                "SubnetIds": ["subnet-1"],
                "SecurityGroupIds": ["sg-1"],
                "Tags": {},
            },
        )
        for status in statuses:
            reason = "subnet-1 is in an unsupported availability zone" if status == "FAILED" else ""
            stub.add_response("get_vpc_link", link_answer(status, reason), {"VpcLinkId": "abc123"})
        if outcome == "available":
            links.create(target, {})
            assert clock.now() > 0  # it waited
        else:
            with pytest.raises(PlatformError, match=re.escape(outcome)):
                links.create(target, {})
        stub.assert_no_pending_responses()


# --- the commands, on a project written to disk ------------------------------------------------

API_BLOCK = """
api:
  keys: required
  default_plan: partner
  plans:
    partner: {rate: 20/s, burst: 40, quota: 10000/day, keys: [acme]}
  allow_cidrs: [10.0.0.0/8]
  cache: {ttl: 30s, methods: [GET]}
"""


def test_bootstrap_keys_and_iam_policy_commands_on_an_ecs_service_with_an_edge(
    ecs_env: AwsEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, ecs_env)
    with (tmp_path / "services" / "orders" / "service.yaml").open("a") as service:
        service.write(API_BLOCK)
    root = ["--root", str(tmp_path)]

    assert main([*root, "bootstrap", "--env", "aws-test", "orders"]) == 0
    created = capsys.readouterr()
    [shown] = [line for line in created.out.splitlines() if line.startswith("secret")]
    acme = shown.rpartition(": ")[2]  # the declared key's secret, printed once
    assert shown == f"secret  api key  orders acme (plan partner): {acme}" and len(acme) >= 20
    assert main([*root, "bootstrap", "--env", "aws-test", "orders", "--dry-run"]) == 0
    again = capsys.readouterr().out
    assert "exists  rest api" in again and "exists  usage plan" in again and "create " not in again, again
    assert "exists  api key" in again and acme not in again

    assert main([*root, "keys", "create", "orders", "--env", "aws-test", "--name", "alice"]) == 0
    secret = capsys.readouterr().out.strip()
    assert len(secret) >= 20
    assert main([*root, "keys", "list", "orders", "--env", "aws-test", "--json"]) == 0
    declared, listed = json.loads(capsys.readouterr().out)
    assert listed["name"] == "alice" and listed["hint"] == secret[:4] and listed["revoked"] is None
    assert (declared["name"], declared["hint"], declared["declared"]) == ("acme", acme[:4], True)
    assert not listed["declared"]
    assert main([*root, "keys", "revoke", "orders", "--env", "aws-test", "--name", "alice"]) == 0
    assert "revoked key alice" in capsys.readouterr().err
    client = boto3.client("apigateway", region_name=ecs_env.region)
    assert sorted((k["name"], k["enabled"]) for k in client.get_api_keys()["items"]) == [
        ("orders-aws-test-acme", True), ("orders-aws-test-alice", False)]

    for kind, edge_actions in (
        ("deploy", {"apigateway:GET", "apigateway:DELETE"}),
        (
            "bootstrap",
            {"apigateway:GET", "apigateway:POST", "apigateway:PUT", "apigateway:PATCH", "apigateway:DELETE"},
        ),
    ):
        assert main([*root, "iam-policy", "--env", "aws-test", "--kind", kind]) == 0
        allowed = policy_actions(json.loads(capsys.readouterr().out))
        assert {a for a in allowed if a.startswith("apigateway:")} == edge_actions
    assert created.err  # the first run reported what it created

    app = App(tmp_path)  # a deployment of the service: its split changes flush the stage cache
    env = app.environment("aws-test")
    assert isinstance(
        app.factory(env).platform(env, app.project.service("orders")).router, CacheFlushingRouter
    )
