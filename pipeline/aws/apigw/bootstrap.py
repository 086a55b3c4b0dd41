"""Bootstrap of a service's ``api:`` edge: its REST API, planned then created.

``plan_edge(session, spec)`` only reads: one ``BootstrapStep`` per resource (``exists``
and a ``create()`` that makes it), executed in order by ``pipeline.aws.bootstrap.execute``.
Each ``create`` looks up what it depends on (the API id, a parent resource) when it runs,
so a plan made before anything existed executes correctly; a second run finds everything
as wanted and writes nothing.

Steps, in order: the REST API (created with its resource policy and tags), the resource
policy when it differs from ``allow_cidrs``/``deny_cidrs``, the resources of the route,
their methods with their integrations, the function's invoke permission for API Gateway
on its alias (Lambda) or the VPC link to the ALB (ECS), a deployment to the stage
``live`` when the stage is missing or anything above was created (API Gateway serves a
change only once it is deployed), the stage's cache (cluster and per-method settings),
one usage plan per plan of the ``api:`` block bound to that stage, and the plans' declared
keys when a ``reveal`` takes their secrets (``pipeline.aws.apigw.declared``). Unlike the rest of
bootstrap, the policy, the stage's cache settings and the plans' limits converge to the
configuration: they are the ``api:`` block's own settings, not infrastructure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws.apigw.declared import Reveal, declared_key_steps
from pipeline.aws.apigw.methods import MethodInfo, integration_patch, method_patch, stage_patch
from pipeline.aws.apigw.plans import patch_operations, quota, throttle
from pipeline.aws.apigw.rest import RestApi, RestApiInfo
from pipeline.aws.apigw.spec import (
    STAGE,
    AlbTarget,
    EdgeSpec,
    LambdaTarget,
    MethodSpec,
    resource_policy,
    same_policy,
)
from pipeline.aws.apigw.spec import resource_paths as route_resources
from pipeline.aws.apigw.vpc_link import VpcLinks
from pipeline.aws.bootstrap import BootstrapStep
from pipeline.aws.errors import aws_errors, error_code
from pipeline.aws.session import AwsSession
from pipeline.clock import SystemClock
from pipeline.config.api import UsagePlan
from pipeline.core.errors import NotFoundError, PlatformError
from pipeline.core.ports import Clock

__all__ = ["IAM_ACTIONS", "plan_edge"]

IAM_ACTIONS: frozenset[str] = frozenset({"lambda:GetPolicy", "lambda:AddPermission"})


def plan_edge(
    session: AwsSession, spec: EdgeSpec, clock: Clock | None = None, reveal: Reveal | None = None
) -> list[BootstrapStep]:
    """What the ``api:`` edge of ``spec`` needs (reads only); see the module docstring.
    ``clock`` paces the wait for a new VPC link (ECS services); ``reveal`` takes the secret
    of each declared key created (None: declared keys are not planned)."""
    steps = _Planner(session, spec, clock or SystemClock()).steps()
    return steps + (declared_key_steps(session, spec, reveal) if reveal is not None else [])


def _all_paths(route: str) -> list[str]:
    """Every resource of the route, parents first: ``/a/b/{proxy+}`` -> ``/a``, ``/a/b``, ..."""
    out: list[str] = []
    for path in route_resources(route):
        parts = [p for p in path.split("/") if p]
        out += ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return list(dict.fromkeys(out))


class _Planner:
    def __init__(self, session: AwsSession, spec: EdgeSpec, clock: Clock) -> None:
        self.spec = spec
        self.clock = clock
        self.rest = RestApi(session.client("apigateway"), spec)
        self.session = session
        self.policy = resource_policy(spec.api)

    def steps(self) -> list[BootstrapStep]:
        s, found = self.spec, self.rest.find()
        if found is not None and any(found.tags.get(k) != v for k, v in s.tags.items()):
            raise PlatformError(
                f"a REST API named {s.name} exists but was not made by pipeline for {s.service} in "
                f"{s.environment} (its tags: {found.tags or 'none'})",
                hint=f"rename or delete that API, or tag it {s.tags} if it is this service's edge",
            )
        api_id = found.api_id if found else ""
        resources = self.rest.resources(api_id) if found else {}
        # the ALB's VPC link comes first: the integrations name it; the invoke permission
        # of a function names the API, so it comes after
        out = self._target_steps(found) if isinstance(s.target, AlbTarget) else []
        out.append(
            BootstrapStep(
                "rest api", s.name, found is not None, self._create_api, "REGIONAL, keys from x-api-key"
            )
        )
        if found is not None:
            out.append(
                BootstrapStep(
                    "resource policy",
                    s.name,
                    same_policy(found.policy, self.policy, api_id),
                    self._set_policy,
                    "aws:SourceIp from allow_cidrs/deny_cidrs",
                )
            )
        for path in _all_paths(s.route_path):
            out.append(BootstrapStep("api resource", path, path in resources, self._resource(path)))
        for method in s.methods():
            have = resources[method.path].methods.get(method.verb) if method.path in resources else None
            wanted = s.request_parameters(method)
            present = have is not None and method_patch(have, s.keys_required, wanted) == []
            out.append(
                BootstrapStep(
                    "api method",
                    f"{method.verb} {method.path}",
                    present,
                    self._method(method),
                    "cached" if method.cached else "",
                )
            )
        if isinstance(s.target, LambdaTarget):
            out += self._target_steps(found)
        stage = self.rest.stage(api_id) if found else None
        changed = any(st.action == "create" for st in out)
        out.append(
            BootstrapStep(
                "api deployment",
                f"{s.name}/{STAGE}",
                stage is not None and not changed,
                self._deploy,
                "serves what is above",
            )
        )
        out.append(
            BootstrapStep(
                "stage cache",
                f"{s.name}/{STAGE}",
                stage_patch(self.spec, stage) == [],
                self._set_cache,
                "off" if s.api.cache is None else f"ttl {round(s.api.cache.ttl)}s",
            )
        )
        if s.api.keys != "none":
            plans = self.rest.usage_plans()
            for name, plan in sorted(s.api.plans.items()):
                full = s.usage_plan_name(name)
                bound = plans.get(full)
                ok = found is not None and bound is not None and patch_operations(bound, plan, api_id) == []
                out.append(BootstrapStep("usage plan", full, ok, self._usage_plan(full, plan)))
        return out

    # --- the API -----------------------------------------------------------------------

    def _found(self) -> RestApiInfo:
        found = self.rest.find()
        if found is None:
            raise NotFoundError(
                f"the REST API {self.spec.name} vanished during bootstrap",
                hint="run `pipeline bootstrap` again",
            )
        return found

    def _create_api(self) -> None:
        self.rest.create(self.policy)

    def _set_policy(self) -> None:
        self.rest.set_policy(self._found().api_id, self.policy)

    def _resource(self, path: str) -> Callable[[], None]:
        def create() -> None:
            api_id = self._found().api_id
            parent, _, part = path.rpartition("/")
            self.rest.create_resource(api_id, self.rest.resources(api_id)[parent or "/"].resource_id, part)

        return create

    def _method(self, method: MethodSpec) -> Callable[[], None]:
        def create() -> None:
            s, api_id = self.spec, self._found().api_id
            found = self.rest.resources(api_id)[method.path]
            resource, have = found.resource_id, found.methods.get(method.verb)
            if have is not None:  # it exists, but not as the block says: patch it
                self._patch_method(api_id, resource, method, have)
                return
            self.rest.put_method(
                api_id,
                resource,
                method.verb,
                key_required=s.keys_required,
                parameters=s.request_parameters(method),
            )
            self.rest.put_integration(api_id, resource, method.verb, **self._integration(method))

        return create

    def _patch_method(self, api_id: str, resource: str, method: MethodSpec, have: MethodInfo) -> None:
        s = self.spec
        wanted = s.request_parameters(method)
        self.rest.update_method(api_id, resource, method.verb, method_patch(have, s.keys_required, wanted))
        if method.cached:  # its cache key is its request parameters
            ops = integration_patch(sorted(have.parameters), s.cache_key_parameters(method))
            if ops:
                self.rest.update_integration(api_id, resource, method.verb, ops)

    def _integration(self, method: MethodSpec) -> dict[str, Any]:
        s, target = self.spec, self.spec.target
        cache = {"cacheKeyParameters": s.cache_key_parameters(method)} if method.cached else {}
        if isinstance(target, LambdaTarget):
            return {
                "type": "AWS_PROXY",
                "integrationHttpMethod": "POST",
                "uri": s.lambda_uri(target),
                **cache,
            }
        links = VpcLinks(self.session, self.clock)
        path = method.path.replace("{proxy+}", "{proxy}")
        params = {"integration.request.path.proxy": "method.request.path.proxy"} if method.proxy else {}
        return {
            "type": "HTTP_PROXY",
            "integrationHttpMethod": "ANY",
            "uri": f"{links.base_url(target)}{path}",
            "connectionType": "VPC_LINK",
            "connectionId": links.require(target),
            "integrationTarget": target.load_balancer_arn,
            "requestParameters": params,
            **cache,
        }

    # --- the target: a function alias, or the ALB through a VPC link ----------------------

    def _target_steps(self, found: RestApiInfo | None) -> list[BootstrapStep]:
        target = self.spec.target
        if isinstance(target, AlbTarget):
            links = VpcLinks(self.session, self.clock)
            return [
                BootstrapStep(
                    "vpc link",
                    target.vpc_link,
                    links.find(target.vpc_link) is not None,
                    lambda: links.create(target, self.spec.tags),
                    "to the environment's ALB",
                )
            ]
        sid = f"pipeline-rest-{found.api_id}" if found else ""
        present = bool(found) and sid in self._function_policy(target)
        return [
            BootstrapStep(
                "invoke permission",
                f"{target.function}:{target.alias}",
                present,
                lambda: self._permit(target),
                "API Gateway invokes the alias",
            )
        ]

    def _function_policy(self, target: LambdaTarget) -> str:
        client = self.session.client("lambda")
        try:
            data = client.get_policy(FunctionName=target.function, Qualifier=target.alias)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return ""
            with aws_errors(f"read the resource policy of {target.function}:{target.alias}"):
                raise
        return str(data.get("Policy", ""))

    def _permit(self, target: LambdaTarget) -> None:
        api_id = self._found().api_id
        with aws_errors(f"allow the REST API {self.spec.name} to invoke {target.function}:{target.alias}"):
            self.session.client("lambda").add_permission(
                FunctionName=target.function,
                Qualifier=target.alias,
                StatementId=f"pipeline-rest-{api_id}",
                Action="lambda:InvokeFunction",
                Principal="apigateway.amazonaws.com",
                SourceArn=self.spec.source_arn(api_id),
            )

    # --- the stage and its cache ---------------------------------------------------------

    def _deploy(self) -> None:
        self.rest.deploy(self._found().api_id, "pipeline bootstrap")

    def _set_cache(self) -> None:
        api_id = self._found().api_id
        ops = stage_patch(self.spec, self.rest.stage(api_id))
        if ops:
            self.rest.update_stage(api_id, ops)

    # --- usage plans -----------------------------------------------------------------------

    def _usage_plan(self, name: str, plan: UsagePlan) -> Callable[[], None]:
        def create() -> None:
            api_id = self._found().api_id
            found = self.rest.usage_plans().get(name)
            if found is None:
                self.rest.create_usage_plan(name, api_id, throttle(plan), quota(plan))
            elif ops := patch_operations(found, plan, api_id):
                self.rest.update_usage_plan(name, found.plan_id, ops)

        return create
