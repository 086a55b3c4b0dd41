"""The environment's HTTP API (API Gateway v2) in front of its Lambda functions.

One HTTP API per environment, named ``pipeline-<env>``. Each Lambda service adds its
routes (from its ``route.path``; an ALB-style ``/orders/*`` becomes ``ANY /orders/{proxy+}``)
to one integration whose function ARN ends in ``${stageVariables.lambdaAlias}``. Three
stages choose the alias, so one route serves every slot:

- ``$default`` (``https://<api>.execute-api.<region>.amazonaws.com/...``): alias ``live``,
  the one the router shifts traffic on;
- ``blue`` and ``green`` (``.../blue/...``, ``.../green/...``): the slot aliases, which is
  the test route that reaches only one slot (test and load stages).

Every method here is a read or a create-if-missing; ``None`` means "not there".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.aws.errors import aws_errors
from pipeline.core.errors import NotFoundError, PlatformError
from pipeline.core.model import Slot

__all__ = ["STAGES", "STAGE_VARIABLE", "HttpApi", "api_name", "route_keys"]

IAM_ACTIONS: frozenset[str] = frozenset({"apigateway:GET", "apigateway:POST"})
# A deployment only finds the API and its stage URLs (the test route); bootstrap creates.
DEPLOY_ACTIONS: frozenset[str] = frozenset({"apigateway:GET"})

STAGE_VARIABLE = "lambdaAlias"
STAGES: dict[str, str] = {"$default": "live", "blue": "blue", "green": "green"}


def api_name(environment: str) -> str:
    return f"pipeline-{environment}"


def route_keys(path: str) -> tuple[str, ...]:
    """HTTP API route keys for an ALB-style path pattern (``*`` only at the end).

    ``/orders`` -> ``ANY /orders``; ``/orders/*`` -> ``ANY /orders/{proxy+}``; ``/orders*``
    -> both (an HTTP API cannot match ``/ordersX``, the one thing the ALB pattern adds).
    """
    base = path.rstrip("*")
    if "*" in base or "?" in base or path.count("*") > 1:
        raise PlatformError(
            f"route path {path!r} cannot be an HTTP API route: a wildcard is only allowed at the end",
            hint="use a path like /orders, /orders/* or /orders* in lambda.route.path",
        )
    if not path.endswith("*"):
        return (f"ANY {path}",)
    prefix = base.rstrip("/")
    proxy = f"ANY {prefix}/{{proxy+}}"
    if base.endswith("/") or not prefix:
        return (proxy,)
    return (f"ANY {prefix}", proxy)


@dataclass(frozen=True, slots=True)
class ApiInfo:
    api_id: str
    endpoint: str


class HttpApi:
    """The HTTP API of one environment. ``client`` is a boto3 ``apigatewayv2`` client."""

    def __init__(self, client: Any, environment: str) -> None:
        self.client = client
        self.name = api_name(environment)

    def find(self) -> ApiInfo | None:
        kwargs: dict[str, Any] = {}
        while True:
            with aws_errors("list the HTTP APIs"):
                page = self.client.get_apis(**kwargs)
            for item in page.get("Items", []):
                if item.get("Name") == self.name:
                    return ApiInfo(item["ApiId"], item.get("ApiEndpoint", ""))
            if not page.get("NextToken"):
                return None
            kwargs["NextToken"] = page["NextToken"]

    def stage_url(self, slot: Slot) -> str:
        """Base URL of the stage that reaches only ``slot``'s alias (the test route)."""
        api = self.find()
        if api is None:
            raise NotFoundError(
                f"no test route: the HTTP API {self.name} does not exist",
                hint="create it with `pipeline bootstrap --env ENV SERVICE`",
            )
        return f"{api.endpoint}/{slot.value}"

    def create(self) -> ApiInfo:
        with aws_errors(f"create the HTTP API {self.name}"):
            data = self.client.create_api(Name=self.name, ProtocolType="HTTP")
        return ApiInfo(data["ApiId"], data.get("ApiEndpoint", ""))

    def integration(self, api_id: str, uri: str) -> str | None:
        with aws_errors(f"list the integrations of {self.name}"):
            items = self.client.get_integrations(ApiId=api_id).get("Items", [])
        return next((i["IntegrationId"] for i in items if i.get("IntegrationUri") == uri), None)

    def create_integration(self, api_id: str, uri: str) -> str:
        with aws_errors(f"create an integration for {uri} in {self.name}"):
            data = self.client.create_integration(
                ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=uri, PayloadFormatVersion="2.0"
            )
        return str(data["IntegrationId"])

    def route_target(self, api_id: str, key: str) -> str | None:
        """The target (``integrations/<id>``) of route ``key``; None when there is no such route."""
        with aws_errors(f"list the routes of {self.name}"):
            items = self.client.get_routes(ApiId=api_id).get("Items", [])
        return next((str(r.get("Target", "")) for r in items if r.get("RouteKey") == key), None)

    def create_route(self, api_id: str, key: str, integration_id: str) -> None:
        with aws_errors(f"create route {key} in {self.name}"):
            self.client.create_route(ApiId=api_id, RouteKey=key, Target=f"integrations/{integration_id}")

    def stages(self, api_id: str) -> set[str]:
        with aws_errors(f"list the stages of {self.name}"):
            items = self.client.get_stages(ApiId=api_id).get("Items", [])
        return {str(s["StageName"]) for s in items}

    def create_stage(self, api_id: str, stage: str) -> None:
        with aws_errors(f"create stage {stage} of {self.name}"):
            self.client.create_stage(
                ApiId=api_id, StageName=stage, AutoDeploy=True,
                StageVariables={STAGE_VARIABLE: STAGES[stage]},
                # per-route 5xx for the analysis (LambdaMetrics): only with detailed metrics
                DefaultRouteSettings={"DetailedMetricsEnabled": stage == "$default"},
            )
