"""What the REST API of one service in one environment should be (pure: no AWS calls).

One REST API per service and environment, named ``<service>-<env>`` like its function or
slot services: API keys, usage plans, the resource policy and the stage cache are
API-wide (or stage-wide) in API Gateway, so a key issued for one service must not open
another's, and one service's CIDR lists must not fence another. Its one stage ``live``
serves the service's route:

- resources for the route (an ALB-style ``/orders/*`` is ``/orders`` and
  ``/orders/{proxy+}``), each with an ``ANY`` method and, when ``cache`` is set, an
  explicit method per cached verb (``GET``/``HEAD``): API Gateway prefers the explicit
  method, so only those verbs are cached and a ``POST`` never is;
- ``apiKeyRequired`` on every method when ``keys: required`` (API Gateway has no
  "optional" key: ``optional`` leaves keys unchecked there);
- a Lambda proxy integration on the function's alias ``live`` (the alias the deployment
  shifts) or, for an ECS service, an HTTP proxy through a VPC link to the ALB;
- stage method settings: caching with the TTL on each cached method, the cache key being
  the proxy path plus the configured headers and query parameters;
- a resource policy built from ``allow_cidrs``/``deny_cidrs`` (``aws:SourceIp``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.aws.settings import AwsEnvironment
from pipeline.config.api import ApiConfig
from pipeline.core.errors import UsageError

if TYPE_CHECKING:
    from pipeline.config import ServiceConfig

__all__ = [
    "STAGE",
    "AlbTarget",
    "EdgeSpec",
    "LambdaTarget",
    "MethodSpec",
    "edge_spec",
    "resource_paths",
    "resource_policy",
    "same_policy",
]

STAGE = "live"
PROXY = "{proxy+}"


@dataclass(frozen=True, slots=True)
class LambdaTarget:
    """The function's alias the stage invokes (``function:NAME:ALIAS``)."""

    function: str
    alias: str = "live"


@dataclass(frozen=True, slots=True)
class AlbTarget:
    """The environment's ALB (its live listener), reached through a VPC link (``vpc_link``
    is its name)."""

    listener_arn: str
    vpc_link: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]

    @property
    def load_balancer_arn(self) -> str:
        return load_balancer_arn(self.listener_arn)


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """One method of one resource: ``cached`` ones carry the cache key parameters."""

    path: str
    verb: str
    proxy: bool
    cached: bool

    @property
    def settings_key(self) -> str:
        """The stage's methodSettings key: ``~1orders~1{proxy+}/GET``."""
        return f"{self.path.replace('/', '~1')}/{self.verb}"


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    """The REST API of ``service`` in ``environment`` (see the module docstring)."""

    service: str
    environment: str
    partition: str
    region: str
    account: str
    route_path: str
    api: ApiConfig
    target: LambdaTarget | AlbTarget

    @property
    def name(self) -> str:
        return f"{self.service}-{self.environment}"

    @property
    def tags(self) -> dict[str, str]:
        return {"pipeline:service": self.service, "pipeline:environment": self.environment}

    @property
    def keys_required(self) -> bool:
        return self.api.keys == "required"

    def methods(self) -> list[MethodSpec]:
        cached = sorted(self.api.cache.cached_methods) if self.api.cache is not None else []
        out: list[MethodSpec] = []
        for path in resource_paths(self.route_path):
            proxy = path.endswith(PROXY)
            out.append(MethodSpec(path, "ANY", proxy, cached=False))
            out += [MethodSpec(path, verb, proxy, cached=True) for verb in cached]
        return out

    def request_parameters(self, method: MethodSpec) -> dict[str, bool]:
        """The method's declared request parameters (the proxy path is required)."""
        params = {"method.request.path.proxy": True} if method.proxy else {}
        if method.cached and self.api.cache is not None:
            params |= {f"method.request.header.{h}": False for h in self.api.cache.key.headers}
            params |= {f"method.request.querystring.{q}": False for q in self.api.cache.key.query}
        return params

    def cache_key_parameters(self, method: MethodSpec) -> list[str]:
        """What makes two cached requests different: the path, then headers and query."""
        if not method.cached:
            return []
        return sorted(self.request_parameters(method))

    def lambda_uri(self, target: LambdaTarget) -> str:
        account = f"arn:{self.partition}:lambda:{self.region}:{self.account}"
        fn = f"{account}:function:{target.function}:{target.alias}"
        return (
            f"arn:{self.partition}:apigateway:{self.region}:lambda:path/2015-03-31/functions/{fn}/invocations"
        )

    def source_arn(self, api_id: str) -> str:
        """The ``execute-api`` ARN the function's invoke permission names."""
        return f"arn:{self.partition}:execute-api:{self.region}:{self.account}:{api_id}/*"

    def method_settings(self) -> dict[str, dict[str, Any]]:
        """The stage's cache settings per cached method (``methodSettings`` keys)."""
        cache = self.api.cache
        if cache is None:
            return {}
        return {
            m.settings_key: {"cachingEnabled": True, "cacheTtlInSeconds": round(cache.ttl)}
            for m in self.methods()
            if m.cached
        }

    def usage_plan_name(self, plan: str) -> str:
        return f"{self.name}-{plan}"


def edge_spec(env: AwsEnvironment, service: ServiceConfig) -> EdgeSpec | None:
    """The REST API of ``service`` in ``env``; None when the service has no ``api:`` block."""
    if service.api is None:
        return None
    target: LambdaTarget | AlbTarget
    if service.kind == "lambda":
        target = LambdaTarget(f"{service.name}-{env.name}"[:64])  # as pipeline.aws.lambda_.spec names it
    else:
        target = AlbTarget(env.listener_arn, f"pipeline-{env.name}", env.subnets, env.security_groups)
    return EdgeSpec(
        service.name,
        env.name,
        env.partition,
        env.region,
        env.account,
        service.route.path,
        service.api,
        target,
    )


def load_balancer_arn(listener_arn: str) -> str:
    """``...:listener/app/<name>/<id>/<listener>`` -> ``...:loadbalancer/app/<name>/<id>``."""
    head, _, path = listener_arn.partition(":listener/")
    parts = path.split("/")
    return f"{head}:loadbalancer/{'/'.join(parts[:3])}" if head and len(parts) >= 3 else ""


def resource_paths(route: str) -> tuple[str, ...]:
    """The REST API resources with methods for an ALB-style path pattern (``*`` only at the end).

    ``/orders`` -> ``/orders``; ``/orders/*`` and ``/orders*`` -> ``/orders`` and
    ``/orders/{proxy+}``; ``/*`` -> ``/`` and ``/{proxy+}``.
    """
    base = route.rstrip("*")
    if "*" in base or "?" in base or route.count("*") > 1:
        raise UsageError(
            f"route path {route!r} cannot be a REST API resource: a wildcard is only allowed at the end",
            hint="use a path like /orders, /orders/* or /orders* in the service's route.path",
        )
    prefix = "/" + base.strip("/")
    if not route.endswith("*"):
        return (prefix,)
    return (prefix, f"{prefix.rstrip('/')}/{PROXY}")


def resource_policy(api: ApiConfig) -> dict[str, Any]:
    """The REST API's resource policy for ``allow_cidrs``/``deny_cidrs``.

    The pattern of the API Gateway guide ("Allow API traffic from a source IP address"): an
    Allow for everyone, then explicit Denies, which win over any Allow: callers outside
    ``allow_cidrs`` (when any are set), and callers inside ``deny_cidrs``.
    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-resource-policies-examples.html
    """
    invoke = {"Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
    statements: list[dict[str, Any]] = [{"Effect": "Allow", **invoke}]
    if api.allow_cidrs:
        statements.append(
            {
                "Effect": "Deny",
                **invoke,
                "Condition": {"NotIpAddress": {"aws:SourceIp": list(api.allow_cidrs)}},
            }
        )
    if api.deny_cidrs:
        statements.append(
            {"Effect": "Deny", **invoke, "Condition": {"IpAddress": {"aws:SourceIp": list(api.deny_cidrs)}}}
        )
    return {"Version": "2012-10-17", "Statement": statements}


def same_policy(stored: str | None, wanted: dict[str, Any], api_id: str) -> bool:
    """Whether the policy API Gateway returns is ``wanted``.

    API Gateway returns the document as a string with its quotes backslash-escaped and
    ``execute-api:/*`` expanded to the API's ARN (escaping: localstack/localstack#3325,
    hashicorp/terraform-provider-aws#4397; the ARN: go-to-k/cdk-real-drift#721), so both
    are undone before comparing.
    """
    if not stored:
        return False
    text = stored.replace('\\"', '"') if '\\"' in stored else stored
    try:
        found = json.loads(text)
    except ValueError:
        return False
    return bool(_normal(found, api_id) == _normal(wanted, api_id))


def _normal(node: Any, api_id: str) -> Any:
    if isinstance(node, dict):
        return {k: _normal(v, api_id) for k, v in node.items()}
    if isinstance(node, list):
        items = [_normal(v, api_id) for v in node]
        return items[0] if len(items) == 1 else sorted(items, key=json.dumps)
    if isinstance(node, str) and node.startswith("arn:") and f":{api_id}/" in node:
        return "execute-api:/" + node.split(f":{api_id}/", 1)[1]
    return node
