"""The local platform's side of a service's ``api:`` block: its rules sent to the plane, and
``LocalApiKeys``, the ``ApiKeys`` port over the plane's control API.

``register_edge`` runs whenever the factory builds a service's adapters (every deployment,
``pipeline keys``): the plane then enforces the service's current ``api:`` block, or none
when the block was removed. It answers the synthetic key the deployment's own evidence
traffic sends.
"""

from __future__ import annotations

import builtins
import contextlib
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pipeline.core.edge import ApiKey, EdgeCounts, IssuedKey
from pipeline.core.errors import NotFoundError, UsageError
from pipeline.core.model import Measurement, Slot
from pipeline.core.ports import Metrics
from pipeline.local.plane.control_client import PlaneClient

if TYPE_CHECKING:
    from pipeline.config import ServiceConfig
    from pipeline.config.api import ApiConfig
    from pipeline.loadtest.smoke import SmokeRequest

KEY_HEADER = "x-api-key"


def policy_document(api: ApiConfig) -> dict[str, Any]:
    """The plane's ``EdgePolicy`` document for an ``api:`` block."""
    cache = api.cache
    return {
        "keys": api.keys, "default_plan": api.default_plan,
        "plans": {name: {"rate": plan.rate, "burst": plan.bucket, "quota": plan.quota}
                  for name, plan in api.plans.items()},
        "allow": list(api.allow_cidrs), "deny": list(api.deny_cidrs),
        "cache": None if cache is None else {
            "ttl": cache.ttl, "headers": list(cache.key.headers), "query": list(cache.key.query),
            "methods": sorted(cache.cached_methods), "invalidate_on_deploy": cache.invalidate_on_deploy,
        },
    }


def _path(env: str, service: str, rest: str = "") -> str:
    quote = urllib.parse.quote
    return f"/v1/envs/{quote(env, safe='')}/services/{quote(service, safe='')}{rest}"


def register_edge(client: PlaneClient, env: str, service: ServiceConfig) -> str | None:
    """Make the plane enforce ``service.api`` in ``env`` (or nothing); the synthetic key when
    the service is behind an edge. Idempotent."""
    if service.api is None:
        with contextlib.suppress(NotFoundError):  # a plane older than the edge has none to remove
            client.call("DELETE", _path(env, service.name, "/edge"))
        return None
    answer = client.call("PUT", _path(env, service.name, "/edge"), policy_document(service.api))
    return str(answer["synthetic_key"])


def keyed(requests: Sequence[SmokeRequest], key: str) -> tuple[SmokeRequest, ...]:
    """``requests`` sending ``x-api-key: key`` too."""
    return tuple(replace(r, headers=(*r.headers, (KEY_HEADER, key))) for r in requests)


class LocalApiKeys:
    """``ApiKeys`` of one local environment; ``service_of(name)`` is the service's config
    (raises NotFoundError for an unknown one)."""

    def __init__(self, client: PlaneClient, env: str, service_of: Callable[[str], ServiceConfig]) -> None:
        self._client = client
        self._env = env
        self._service_of = service_of

    def create(self, service: str, name: str, plan: str | None) -> IssuedKey:
        config = self._keyed(service)
        api = config.api
        assert api is not None
        chosen = plan or api.default_plan
        if chosen is not None and chosen not in api.plans:
            known = ", ".join(sorted(api.plans)) or "none"
            raise UsageError(f"{service} has no usage plan {chosen!r}: its plans are {known}",
                             hint=f"pass --plan with one of them, or add it under api.plans in "
                                  f"services/{service}/service.yaml")
        register_edge(self._client, self._env, config)
        answer = self._client.call("POST", _path(self._env, service, "/keys"), {"name": name, "plan": chosen})
        return IssuedKey(ApiKey.from_dict(answer["key"]), str(answer["secret"]))

    def list(self, service: str) -> list[ApiKey]:
        self._service_of(service)
        answer = self._client.call("GET", _path(self._env, service, "/keys"))
        return [ApiKey.from_dict(entry) for entry in answer["keys"]]

    def revoke(self, service: str, name: str) -> ApiKey:
        self._service_of(service)
        quoted = urllib.parse.quote(name, safe="")
        answer = self._client.call("DELETE", _path(self._env, service, f"/keys/{quoted}"))
        return ApiKey.from_dict(answer["key"])

    def counts(self, service: str, since: float, until: float) -> builtins.list[EdgeCounts]:
        """What the edge did per key over ``[since, until)`` (epoch seconds)."""
        query = {"since": repr(since), "until": repr(until)}
        answer = self._client.call("GET", _path(self._env, service, "/edge/counts"), query=query)
        return [EdgeCounts(key, int(c["hits"]), int(c["misses"]), int(c["throttled"]), int(c["denied"]))
                for key, c in sorted(answer["keys"].items())]

    def _keyed(self, service: str) -> ServiceConfig:
        config = self._service_of(service)
        if config.api is None or config.api.keys == "none":
            raise UsageError(f"{service} takes no API keys: its service.yaml has "
                             f"{'no api: block' if config.api is None else 'api.keys: none'}",
                             hint=f"set api: {{keys: required}} in services/{service}/service.yaml")
        return config


def edge_figures(counts: Sequence[EdgeCounts]) -> tuple[tuple[str, float], ...]:
    """Totals over every key, as ``Measurement.extra`` figures; the hit ratio when looked up."""
    hits, misses = sum(c.hits for c in counts), sum(c.misses for c in counts)
    figures = [("edge_cache_hits", float(hits)), ("edge_cache_misses", float(misses)),
               ("edge_throttled", float(sum(c.throttled for c in counts))),
               ("edge_denied", float(sum(c.denied for c in counts)))]
    if hits + misses:
        figures.append(("edge_cache_hit_ratio", hits / (hits + misses)))
    return tuple(figures)


class EdgeCountingMetrics:
    """``Metrics`` of a service behind an edge: the platform's own figures, plus the edge's
    counts over the same window in ``extra`` (for people and reports; analysis never reads
    them). The edge counts the route, not a slot: both slots' measurements carry the same."""

    def __init__(self, inner: Metrics, keys: LocalApiKeys, service: str) -> None:
        self._inner, self._keys, self._service = inner, keys, service

    def measure(self, slot: Slot, since: float, until: float) -> Measurement:
        measured = self._inner.measure(slot, since, until)
        counts = self._keys.counts(self._service, since, until)
        return replace(measured, extra=measured.extra + edge_figures(counts))
