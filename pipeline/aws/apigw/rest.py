"""The API Gateway REST API calls of a service's edge (``apigateway``, not ``apigatewayv2``).

One method per use case, each returning plain values; every list is paged to its end and
none relies on the order API Gateway returns. ``None`` means "not there".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws.apigw.methods import MethodInfo
from pipeline.aws.apigw.spec import STAGE, EdgeSpec
from pipeline.aws.errors import aws_errors, error_code, translate

__all__ = ["ResourceInfo", "RestApi", "RestApiInfo", "StageInfo", "UsagePlanInfo"]

# Actions are API Gateway's HTTP methods on its resources
IAM_ACTIONS: frozenset[str] = frozenset(
    {"apigateway:GET", "apigateway:POST", "apigateway:PUT", "apigateway:PATCH"}
)
PAGE = 500  # the largest page API Gateway's GET calls accept


@dataclass(frozen=True, slots=True)
class RestApiInfo:
    api_id: str
    policy: str | None
    root_id: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    resource_id: str
    methods: dict[str, MethodInfo]


@dataclass(frozen=True, slots=True)
class StageInfo:
    cache_enabled: bool
    method_settings: dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class UsagePlanInfo:
    plan_id: str
    stages: frozenset[str]  # "apiId:stage"
    throttle: dict[str, Any] = field(default_factory=dict)
    quota: dict[str, Any] = field(default_factory=dict)


class RestApi:
    """The REST API named ``spec.name``. ``client`` is a boto3 ``apigateway`` client."""

    def __init__(self, client: Any, spec: EdgeSpec) -> None:
        self.client = client
        self.spec = spec
        self.name = spec.name

    def _pages(self, call: str, doing: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        position: str | None = None
        while True:
            page_args = {**kwargs, "limit": PAGE, **({"position": position} if position else {})}
            with aws_errors(doing):
                page = getattr(self.client, call)(**page_args)
            yield from page.get("items", [])
            position = page.get("position")
            if not position:
                return

    # --- the API and its policy ------------------------------------------------------

    def find(self) -> RestApiInfo | None:
        for item in self._pages("get_rest_apis", "list the REST APIs"):
            if item.get("name") == self.name:
                tags = {str(k): str(v) for k, v in (item.get("tags") or {}).items()}
                return RestApiInfo(
                    str(item["id"]), item.get("policy"), str(item.get("rootResourceId", "")), tags
                )
        return None

    def create(self, policy: dict[str, Any]) -> str:
        with aws_errors(f"create the REST API {self.name}"):
            data = self.client.create_rest_api(
                name=self.name,
                description=f"the api: edge of {self.spec.service} in {self.spec.environment}",
                endpointConfiguration={"types": ["REGIONAL"]},
                apiKeySource="HEADER",
                policy=json.dumps(policy),
                tags=self.spec.tags,
            )
        return str(data["id"])

    def set_policy(self, api_id: str, policy: dict[str, Any]) -> None:
        with aws_errors(f"replace the resource policy of {self.name}"):
            self.client.update_rest_api(
                restApiId=api_id,
                patchOperations=[{"op": "replace", "path": "/policy", "value": json.dumps(policy)}],
            )

    # --- resources, methods, integrations --------------------------------------------

    def resources(self, api_id: str) -> dict[str, ResourceInfo]:
        """Every resource by path, with the verbs of its methods."""
        found = self._pages(
            "get_resources", f"list the resources of {self.name}", restApiId=api_id, embed=["methods"]
        )
        return {str(r["path"]): ResourceInfo(str(r["id"]), _methods(r)) for r in found}

    def update_method(self, api_id: str, resource_id: str, verb: str, ops: list[dict[str, str]]) -> None:
        with aws_errors(f"update method {verb} in {self.name}"):
            self.client.update_method(
                restApiId=api_id, resourceId=resource_id, httpMethod=verb, patchOperations=ops
            )

    def update_integration(self, api_id: str, resource_id: str, verb: str, ops: list[dict[str, str]]) -> None:
        with aws_errors(f"update the integration of {verb} in {self.name}"):
            self.client.update_integration(
                restApiId=api_id, resourceId=resource_id, httpMethod=verb, patchOperations=ops
            )

    def create_resource(self, api_id: str, parent_id: str, part: str) -> str:
        with aws_errors(f"create resource {part} in {self.name}"):
            data = self.client.create_resource(restApiId=api_id, parentId=parent_id, pathPart=part)
        return str(data["id"])

    def put_method(
        self, api_id: str, resource_id: str, verb: str, *, key_required: bool, parameters: dict[str, bool]
    ) -> None:
        with aws_errors(f"create method {verb} in {self.name}"):
            self.client.put_method(
                restApiId=api_id,
                resourceId=resource_id,
                httpMethod=verb,
                authorizationType="NONE",
                apiKeyRequired=key_required,
                requestParameters=parameters,
            )

    def put_integration(self, api_id: str, resource_id: str, verb: str, **integration: Any) -> None:
        with aws_errors(f"create the integration of {verb} in {self.name}"):
            self.client.put_integration(
                restApiId=api_id, resourceId=resource_id, httpMethod=verb, **integration
            )

    # --- the stage -------------------------------------------------------------------

    def stage(self, api_id: str) -> StageInfo | None:
        with aws_errors(f"list the stages of {self.name}"):
            items = self.client.get_stages(restApiId=api_id).get("item", [])
        found = next((s for s in items if s.get("stageName") == STAGE), None)
        if found is None:
            return None
        return StageInfo(bool(found.get("cacheClusterEnabled")), dict(found.get("methodSettings") or {}))

    def deploy(self, api_id: str, note: str) -> None:
        """A deployment of the API's current resources to the stage (made when missing)."""
        with aws_errors(f"deploy {self.name} to its stage {STAGE}"):
            self.client.create_deployment(restApiId=api_id, stageName=STAGE, description=note[:1024])

    def update_stage(self, api_id: str, operations: list[dict[str, str]]) -> None:
        with aws_errors(f"update the stage {STAGE} of {self.name}"):
            self.client.update_stage(restApiId=api_id, stageName=STAGE, patchOperations=operations)

    def flush_cache(self, api_id: str) -> bool:
        """Empty the stage's cache; False when there is no such stage (nothing cached)."""
        try:
            self.client.flush_stage_cache(restApiId=api_id, stageName=STAGE)
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                return False
            with aws_errors(f"flush the cache of {self.name}'s stage {STAGE}"):
                raise
        except BotoCoreError as exc:
            raise translate(exc, f"flush the cache of {self.name}'s stage {STAGE}") from exc
        return True

    # --- usage plans -----------------------------------------------------------------

    def usage_plans(self) -> dict[str, UsagePlanInfo]:
        """This API's usage plans by name (``<api name>-<plan>``)."""
        out: dict[str, UsagePlanInfo] = {}
        for item in self._pages("get_usage_plans", "list the usage plans"):
            name = str(item.get("name", ""))
            if name.startswith(f"{self.name}-"):
                stages = frozenset(f"{s['apiId']}:{s['stage']}" for s in item.get("apiStages", []))
                out[name] = UsagePlanInfo(
                    str(item["id"]), stages, dict(item.get("throttle") or {}), dict(item.get("quota") or {})
                )
        return out

    def create_usage_plan(
        self, name: str, api_id: str, throttle: dict[str, Any], quota: dict[str, Any] | None
    ) -> str:
        with aws_errors(f"create the usage plan {name}"):
            data = self.client.create_usage_plan(
                name=name,
                apiStages=[{"apiId": api_id, "stage": STAGE}],
                throttle=throttle,
                **({"quota": quota} if quota else {}),
                tags=self.spec.tags,
            )
        return str(data["id"])

    def update_usage_plan(self, name: str, plan_id: str, operations: list[dict[str, str]]) -> None:
        with aws_errors(f"update the usage plan {name}"):
            self.client.update_usage_plan(usagePlanId=plan_id, patchOperations=operations)


def _methods(resource: dict[str, Any]) -> dict[str, MethodInfo]:
    """The methods embedded in a resource (``embed=methods``) by verb."""
    return {
        str(verb): MethodInfo(
            bool(method.get("apiKeyRequired")),
            {str(k): bool(v) for k, v in (method.get("requestParameters") or {}).items()},
        )
        for verb, method in (resource.get("resourceMethods") or {}).items()
    }
