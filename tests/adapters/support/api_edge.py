"""Shared pieces of the ``api:`` edge adapter tests (test_api_edge_aws*.py): the block,
its ``EdgeSpec`` on the Lambda world, a bootstrap, the keys port, a router as a value."""

from __future__ import annotations

from typing import Any

from pipeline.aws.apigw.bootstrap import plan_edge
from pipeline.aws.apigw.keys import ApiGatewayKeys
from pipeline.aws.apigw.spec import EdgeSpec, LambdaTarget
from pipeline.aws.bootstrap import execute
from pipeline.config.api import ApiConfig
from pipeline.core.errors import UsageError
from pipeline.core.model import Weights
from tests.adapters.support.lambda_world import ACCOUNT, LambdaWorld

WRITES = ("Create", "Put", "Update", "Add", "Delete", "Tag", "Flush", "Import")
BLOCK: dict[str, Any] = {
    "keys": "required",
    "default_plan": "partner",
    "plans": {"partner": {"rate": "20/s", "burst": 40, "quota": "10000/day"}, "free": {"rate": 2}},
    "allow_cidrs": ["10.0.0.0/8", "192.0.2.0/24"],
    "deny_cidrs": ["10.9.0.0/16"],
    "cache": {"ttl": "30s", "key": {"headers": ["accept-language"], "query": ["page"]}, "methods": ["GET"]},
}


def edge(world: LambdaWorld, **changes: Any) -> EdgeSpec:
    api = ApiConfig.model_validate({**BLOCK, **changes})
    return EdgeSpec(
        "orders", "dev", "aws", world.spec().region, ACCOUNT, "/orders/*", api, LambdaTarget("orders-dev")
    )


def writes(world: LambdaWorld) -> list[str]:
    return [name for name, _ in world.calls.made if name.split(":")[1].startswith(WRITES)]


def bootstrapped(world: LambdaWorld, spec: EdgeSpec) -> str:
    """The function (lambda bootstrap) and its edge; the REST API's id."""
    world.bootstrap(world.spec())
    execute(plan_edge(world.session, spec))
    client = world.session.client("apigateway")
    return next(a["id"] for a in client.get_rest_apis()["items"] if a["name"] == "orders-dev")


def keys_of(world: LambdaWorld, spec: EdgeSpec) -> ApiGatewayKeys:
    def spec_of(name: str) -> EdgeSpec:
        if name != spec.service:
            raise UsageError(f"{name} has no api: block")
        return spec

    return ApiGatewayKeys(world.session, spec_of)


class Split:
    """A router whose split is a value (the alias router is tested in test_lambda_router)."""

    def __init__(self) -> None:
        self.weights: Weights | None = Weights(100, 0)

    def set_weights(self, weights: Weights) -> None:
        self.weights = weights

    def get_weights(self) -> Weights | None:
        return self.weights
