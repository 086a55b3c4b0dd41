"""The local edge: a service's ``api:`` rules, enforced by the router in front of its route.

Order of the checks on the main listener (the test listener, like an ALB test listener
on AWS, is not behind the edge)::

    peer address   deny_cidrs match, or allow_cidrs set and no match  -> 403
    x-api-key      keys required and none sent, unknown or revoked    -> 403
                   (keys optional: checked only when sent)
    usage plan     token bucket empty (rate, burst)                   -> 429 Retry-After
                   daily quota used up (UTC day)                      -> 429 Retry-After
    cache          GET/HEAD (as configured) found within the TTL      -> answer, x-cache: hit
                   otherwise forwarded; a small 2xx answer is stored  -> x-cache: miss

The peer address is the TCP peer of the connection (``X-Forwarded-For`` is not trusted).
Refusals answer JSON ``{"message": ...}`` like API Gateway, with the same status codes.
The cache key is the method, the path with the configured query parameters and the
configured request headers; a deployment that changes the route (new weights, a release
provisioned) empties the route's cache when ``invalidate_on_deploy``.

The pipeline's own evidence traffic carries the plane's synthetic key
(``EdgeKeyStore.synthetic_secret``): it passes every rule except the CIDR lists and is
never cached, so an analysis always measures the releases themselves.

Counters per key name (``""`` for requests without a key): cache hits and misses,
throttled and denied requests, per second (``EdgeBook.counts``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from pipeline.core.edge import EdgeCounts
from pipeline.local.http.edge_keys import SYNTHETIC, EdgeKeyStore
from pipeline.local.http.edge_parts import (
    CachedAnswer,
    DailyQuota,
    EdgeCounters,
    EdgePolicy,
    ResponseCache,
    TokenBucket,
    retry_after,
)
from pipeline.local.messages import Answer, Request
from pipeline.local.private_files import private_dir, write_private

KEY_HEADER = "x-api-key"
CACHE_HEADER = "x-cache"
POLICIES_FILE = "edge-policies.json"
_NOT_CACHED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive",
                                 "set-cookie", "date"})

Forward = Callable[[], Awaitable[Answer]]


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps({"message": message}).encode(), headers, content_type="application/json")


class Edge:
    """The rules of one (environment, service) and their state (buckets, quotas, cache)."""

    def __init__(self, env: str, service: str, policy: EdgePolicy, keys: EdgeKeyStore) -> None:
        self.env, self.service = env, service
        self.policy = policy
        self.keys = keys
        self.cache = ResponseCache()
        self.counters = EdgeCounters()
        self._buckets: dict[str, TokenBucket] = {}
        self._quotas: dict[str, DailyQuota] = {}
        self._plan_of: dict[str, str | None] = {}  # key name -> its plan, as last looked up

    async def serve(self, request: Request, forward: Forward) -> Answer:
        """Apply the rules to ``request``; ``forward()`` sends it on to the service."""
        now = time.time()
        policy = self.policy
        secret = request.headers.get(KEY_HEADER)
        if secret and self.keys.is_synthetic(self.env, self.service, secret):
            if not policy.admits(request.remote):
                self.counters.count(SYNTHETIC, now, "denied")
                return _refusal(403, "Forbidden: the caller's address is not allowed")
            return await forward()
        name, refused = self._identify(secret)
        if refused is None and not policy.admits(request.remote):
            refused = _refusal(403, "Forbidden: the caller's address is not allowed")
        if refused is None and name:
            refused = self._throttle(name, now)
            if refused is not None:
                self.counters.count(name, now, "throttled")
                return refused
        if refused is not None:
            self.counters.count(name, now, "denied")
            return refused
        return await self._cached(request, name, now, forward)

    def _identify(self, secret: str | None) -> tuple[str, Answer | None]:
        """The key's name ("" without a key) and the refusal, if any."""
        mode = self.policy.keys
        if mode == "none" or (mode == "optional" and not secret):
            return "", None
        if not secret:
            return "", _refusal(403, "Forbidden: this API needs an x-api-key header")
        key = self.keys.lookup(self.env, self.service, secret)
        if key is None:
            return "", _refusal(403, "Forbidden: the x-api-key is not a key of this API")
        if key.revoked is not None:
            return key.name, _refusal(403, "Forbidden: the x-api-key was revoked")
        self._plan_of[key.name] = key.plan
        return key.name, None

    def _throttle(self, name: str, now: float) -> Answer | None:
        limits = self.policy.limits(self._plan_of.get(name))
        if limits is None:
            return None
        monotonic = time.monotonic()
        bucket = self._buckets.get(name)
        if bucket is None or bucket.limits != limits:
            bucket = self._buckets[name] = TokenBucket(limits, monotonic)
        wait = bucket.take(monotonic)
        if wait is not None:
            return _refusal(429, "Too Many Requests: the key's rate limit is exceeded",
                            {"Retry-After": retry_after(wait)})
        if limits.quota is not None:
            wait = self._quotas.setdefault(name, DailyQuota()).take(limits.quota, now)
            if wait is not None:
                return _refusal(429, f"Limit Exceeded: the key's quota of {limits.quota} requests "
                                     "per day is used up", {"Retry-After": retry_after(wait)})
        return None

    async def _cached(self, request: Request, name: str, now: float, forward: Forward) -> Answer:
        cache = self.policy.cache
        if cache is None or request.method not in cache.methods:
            return await forward()
        key = (request.method, request.path,
               *(f"{q}={','.join(request.query.getall(q, []))}" for q in cache.query),
               *(f"{h}:{request.headers.get(h, '')}" for h in cache.headers))
        monotonic = time.monotonic()
        found = self.cache.get(key, monotonic)
        if found is not None:
            self.counters.count(name, now, "hits")
            hit = Answer(found.status, found.body, found.headers, found.reason)
            hit.headers[CACHE_HEADER] = "hit"
            return hit
        self.counters.count(name, now, "misses")
        response = await forward()
        if response.streamed:
            return response  # too big to cache, already on its way
        if 200 <= response.status < 300:
            headers = tuple((k, v) for k, v in response.headers.items()
                            if k.lower() not in _NOT_CACHED_HEADERS)
            self.cache.put(key, CachedAnswer(monotonic + cache.ttl, response.status, response.reason,
                                             headers, response.body))
        response.headers[CACHE_HEADER] = "miss"
        return response


class EdgeBook:
    """The edges of every (environment, service) of one plane; policies survive a restart
    (``edge-policies.json`` in the plane's folder), buckets, quotas and caches do not."""

    def __init__(self, state_dir: Path) -> None:
        self._dir = Path(state_dir)
        self.keys = EdgeKeyStore(self._dir)
        self._edges: dict[tuple[str, str], Edge] = {}
        try:
            saved = json.loads((self._dir / POLICIES_FILE).read_text())
        except (OSError, ValueError):
            saved = {}
        for entry in saved.get("edges", []):
            env, service = str(entry["env"]), str(entry["service"])
            self._edges[(env, service)] = Edge(env, service, EdgePolicy.from_dict(entry["policy"]), self.keys)

    def get(self, env: str, service: str) -> Edge | None:
        return self._edges.get((env, service))

    def put(self, env: str, service: str, policy: EdgePolicy) -> bool:
        """Set ``service``'s rules in ``env``; a changed policy empties its cache. Idempotent."""
        edge = self._edges.get((env, service))
        if edge is not None and edge.policy == policy:
            return False
        if edge is None:
            self._edges[(env, service)] = Edge(env, service, policy, self.keys)
        else:
            edge.policy = policy
            edge.cache.clear()
        self._save()
        return True

    def remove(self, env: str, service: str) -> bool:
        """No edge in front of ``service`` in ``env`` any more (its ``api:`` block is gone)."""
        if self._edges.pop((env, service), None) is None:
            return False
        self._save()
        return True

    def deployed(self, env: str, service: str) -> int:
        """A deployment changed the route: empty its cache if the policy says so; entries dropped."""
        edge = self._edges.get((env, service))
        if edge is None or edge.policy.cache is None or not edge.policy.cache.invalidate_on_deploy:
            return 0
        return edge.cache.clear()

    def counts(self, env: str, service: str, since: float, until: float) -> list[EdgeCounts]:
        edge = self._edges.get((env, service))
        return edge.counters.window(since, until) if edge is not None else []

    def _save(self) -> None:
        entries = [{"env": env, "service": service, "policy": edge.policy.to_dict()}
                   for (env, service), edge in sorted(self._edges.items())]
        data = json.dumps({"edges": entries}, indent=1).encode()
        write_private(private_dir(self._dir) / POLICIES_FILE, data)
