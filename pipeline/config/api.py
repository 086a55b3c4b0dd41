"""The ``api:`` block of ``service.yaml``: the edge in front of a service's route.

::

    api:
      keys: required            # required | optional | none
      default_plan: partner     # the plan of a key created without --plan
      plans:
        partner: {rate: 20/s, burst: 40, quota: 10000/day, keys: [acme, globex]}
      allow_cidrs: [10.0.0.0/8, 127.0.0.0/8]
      deny_cidrs: [127.0.0.9/32]
      cache: {ttl: 30s, key: {headers: [accept-language], query: [page]}, methods: [GET],
              invalidate_on_deploy: true}

Rates are requests per second (``20/s``, ``600/m``, ``3600/h`` or a plain number); a
quota is requests per UTC day (``10000/day`` or a plain integer). A plan's ``keys`` are
*declared* keys: named keys the platform issues on that plan (API Gateway: ``pipeline
bootstrap``; local: ``pipeline keys create --declared``); a name belongs to one plan only.
The same block drives
the local router's edge (``pipeline.local.http.edge``) and the AWS REST API.

``quota_problem`` compares a plan's quota with the load stage's planned requests; the
estimate is documented there (and in docs/api-edge.md).
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictStr, WithJsonSchema
from pydantic_core import PydanticCustomError

from pipeline.config.fields import Duration, Issue, Matches, Model, Name, Within
from pipeline.core.edge import KEY_NAME_PATTERN

__all__ = ["ApiConfig", "CacheConfig", "CacheKeyConfig", "KeyName", "UsagePlan", "parse_quota", "parse_rate",
           "planned_requests", "quota_problem"]

CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
_RATE_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_RATE = re.compile(r"^(\d+(?:\.\d+)?)\s*/\s*([a-z]+)$")
_QUOTA = re.compile(r"^(\d+)\s*/\s*day$")


def parse_rate(value: object) -> float:
    """Requests per second for ``20/s``, ``600/m``, ``3600/h`` or a plain positive number."""
    if isinstance(value, bool):
        raise ValueError(f"bad rate {value!r}: use 20/s, 600/m, 3600/h or a number per second")
    if isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str) and (found := _RATE.fullmatch(value.strip())) and found[2] in _RATE_UNITS:
        rate = float(found[1]) / _RATE_UNITS[found[2]]
    else:
        raise ValueError(f"bad rate {value!r}: use 20/s, 600/m, 3600/h or a number per second")
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"bad rate {value!r}: it must be more than 0 requests per second")
    return rate


def parse_quota(value: object) -> int:
    """Requests per UTC day for ``10000/day`` or a plain positive integer."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, str) and (found := _QUOTA.fullmatch(value.strip())) and int(found[1]) >= 1:
        return int(found[1])
    raise ValueError(f"bad quota {value!r}: use a number of requests per day, e.g. 10000/day")


def _rate(value: object) -> object:
    try:
        return parse_rate(value)
    except ValueError as exc:
        raise PydanticCustomError("rate", str(exc)) from exc


def _quota(value: object) -> object:
    try:
        return parse_quota(value)
    except ValueError as exc:
        raise PydanticCustomError("quota", str(exc)) from exc


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise PydanticCustomError(
            "cidr", "{value} is not a CIDR block: {why}; write it like 10.0.0.0/8 (host bits zero)",
            {"value": repr(value)[:60], "why": str(exc)},
        ) from exc


RATE_SCHEMA = {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "description": "per second"},
                         {"type": "string", "pattern": r"^\d+(\.\d+)?\s*/\s*(s|sec|m|min|h)$",
                          "examples": ["20/s", "600/m"]}]}
QUOTA_SCHEMA = {"anyOf": [{"type": "integer", "minimum": 1, "description": "per UTC day"},
                          {"type": "string", "pattern": r"^\d+\s*/\s*day$", "examples": ["10000/day"]}]}
Rate = Annotated[float, BeforeValidator(_rate), WithJsonSchema(RATE_SCHEMA)]
Quota = Annotated[int, BeforeValidator(_quota), WithJsonSchema(QUOTA_SCHEMA)]
Cidr = Annotated[StrictStr, AfterValidator(_network)]
HeaderName = Annotated[StrictStr, Matches(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$", "an HTTP header name")]
QueryName = Annotated[StrictStr, Matches(r"^[^&=#\s]{1,128}$", "a query parameter name")]
Method = Annotated[StrictStr, Matches(r"^[A-Za-z]{1,16}$", "an HTTP method like GET")]
KeyName = Annotated[StrictStr, Matches(KEY_NAME_PATTERN, "a key name (1-64 letters, digits, '.', '_', '-')")]


class UsagePlan(Model):
    """Throttling of each key on the plan: a token bucket (``rate`` per second refilling
    ``burst`` tokens) and an optional number of requests per UTC day."""

    rate: Rate = Field(description="requests per second: 20/s, 600/m, 3600/h or a number")
    burst: Annotated[int, Field(strict=True, ge=1)] | None = Field(
        default=None, description="bucket size; unset: the rate rounded up (at least 1)"
    )
    quota: Quota | None = Field(default=None, description="requests per UTC day: 10000/day")
    keys: tuple[KeyName, ...] = Field(
        default=(), description="declared keys of this plan (issued by bootstrap or keys create --declared)"
    )

    @property
    def bucket(self) -> int:
        """Tokens the bucket holds when full."""
        return self.burst if self.burst is not None else max(1, math.ceil(self.rate))


class CacheKeyConfig(Model):
    """What, besides method and path, makes two requests share a cached response."""

    headers: tuple[HeaderName, ...] = ()
    query: tuple[QueryName, ...] = ()


class CacheConfig(Model):
    """Responses cached per key for ``ttl``; only 2xx answers to ``methods`` are cached."""

    ttl: Annotated[Duration, AfterValidator(Within(0, 3600, open_low=True))] = Field(
        description="how long a response is served from the cache (at most 1h, as on API Gateway)"
    )
    key: CacheKeyConfig = Field(default_factory=CacheKeyConfig)
    methods: tuple[Method, ...] = ("GET",)
    invalidate_on_deploy: StrictBool = Field(
        default=True, description="a deployment that changes the route's weights empties its cache"
    )

    def _value_rules(self) -> list[Issue]:
        return [
            (("methods", i), f"{method} responses cannot be cached: only GET and HEAD are; "
                             "remove it from cache.methods")
            for i, method in enumerate(self.methods) if method.upper() not in CACHEABLE_METHODS
        ]

    @property
    def cached_methods(self) -> frozenset[str]:
        return frozenset(method.upper() for method in self.methods)


class ApiConfig(Model):
    """The edge in front of the service's route (local router or API Gateway REST API)."""

    keys: Literal["required", "optional", "none"] = Field(
        default="none", description="x-api-key: required, optional (checked when sent) or none"
    )
    default_plan: Name | None = Field(default=None, description="plan of keys created without --plan")
    plans: dict[Name, UsagePlan] = Field(default_factory=dict)
    allow_cidrs: tuple[Cidr, ...] = Field(default=(), description="callers admitted; empty: everyone")
    deny_cidrs: tuple[Cidr, ...] = Field(default=(), description="callers refused; wins over allow")
    cache: CacheConfig | None = None

    def _value_rules(self) -> list[Issue]:
        issues: list[Issue] = []
        if self.keys == "none" and self.plans:
            issues.append((("plans",), "usage plans need API keys but keys is none: "
                                       "set keys: required (or optional), or remove plans"))
        if self.default_plan is not None and self.default_plan not in self.plans:
            known = ", ".join(sorted(self.plans)) or "none defined"
            issues.append((("default_plan",), f"plan '{self.default_plan}' is not defined in plans "
                                              f"({known}): define it or name another one"))
        for kind, cidrs in (("allow_cidrs", self.allow_cidrs), ("deny_cidrs", self.deny_cidrs)):
            seen: set[str] = set()
            for i, cidr in enumerate(cidrs):
                if cidr in seen:
                    issues.append(((kind, i), f"{cidr} is listed twice: remove one"))
                seen.add(cidr)
        return issues + self._declared_twice()

    def _declared_twice(self) -> list[Issue]:
        owner: dict[str, str] = {}
        issues: list[Issue] = []
        for plan_name, plan in self.plans.items():
            for i, key in enumerate(plan.keys):
                first = owner.setdefault(key, plan_name)
                if first != plan_name or plan.keys.index(key) != i:
                    where = "this plan" if first == plan_name else f"plan {first}"
                    issues.append((("plans", plan_name, "keys", i),
                                   f"key {key} is already declared in {where}: a key has one plan; "
                                   "keep one of the two"))
        return issues

    @property
    def declared_keys(self) -> dict[str, str]:
        """The declared keys' plans, by key name."""
        return {key: name for name, plan in self.plans.items() for key in plan.keys}

    def plan(self, name: str | None) -> UsagePlan | None:
        """The plan called ``name`` (``default_plan`` when None); None when there is none."""
        chosen = name or self.default_plan
        return self.plans.get(chosen) if chosen else None


def planned_requests(users: int, duration: float, min_rps: float | None) -> int:
    """The load stage's planned requests, for comparison with a daily quota.

    Estimate: ``min_rps x duration`` when the stage states ``min_rps`` (it fails below that),
    else one request per user per second (``users x duration``): locust users of the
    example loadtests wait about a second between requests.
    """
    per_second = min_rps if min_rps else float(users)
    return math.ceil(per_second * duration)


def quota_problem(api: ApiConfig, users: int, duration: float, min_rps: float | None) -> list[Issue]:
    """Plans whose daily quota is lower than one load stage's planned requests."""
    planned = planned_requests(users, duration, min_rps)
    return [
        (("api", "plans", name, "quota"),
         f"quota {plan.quota}/day is lower than the load stage's planned {planned} requests "
         f"({'min_rps' if min_rps else 'users'} x duration): one load stage would exhaust it; "
         "raise the quota or shorten the load stage")
        for name, plan in sorted(api.plans.items()) if plan.quota is not None and plan.quota < planned
    ]
