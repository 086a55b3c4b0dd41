"""The pieces the local edge is made of: its policy, token buckets, daily quotas, the
response cache and the per-key counters (``pipeline.local.http.edge`` puts them together).

Times are epoch seconds from ``time.time()`` unless named ``monotonic``. Everything here
runs on the data plane's thread except ``EdgeCounters.window`` and ``ResponseCache.clear``,
which the control API calls: those take the lock.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.edge import EdgeCounts
from pipeline.local.series import PerSecondSeries

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
COUNTS = ("hits", "misses", "throttled", "denied")


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """A usage plan: ``rate`` tokens per second into a bucket of ``burst``; ``quota`` per UTC day."""

    rate: float
    burst: int
    quota: int | None = None


@dataclass(frozen=True, slots=True)
class CachePolicy:
    ttl: float
    headers: tuple[str, ...] = ()
    query: tuple[str, ...] = ()
    methods: frozenset[str] = frozenset({"GET"})
    invalidate_on_deploy: bool = True


@dataclass(frozen=True, slots=True)
class EdgePolicy:
    """The rules of one service's edge, as sent over the control API (``to_dict``/``from_dict``)."""

    keys: str = "none"
    plans: Mapping[str, PlanLimits] = field(default_factory=dict)
    default_plan: str | None = None
    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()
    cache: CachePolicy | None = None

    def limits(self, plan: str | None) -> PlanLimits | None:
        chosen = plan or self.default_plan
        return self.plans.get(chosen) if chosen else None

    def admits(self, address: str | None) -> bool:
        """Whether a peer may call: a deny match refuses; a non-empty allow list must match."""
        if not self.allow and not self.deny:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.deny):
            return False
        return not self.allow or any(ip in net for net in self.allow)

    def to_dict(self) -> dict[str, Any]:
        cache = self.cache
        return {
            "keys": self.keys, "default_plan": self.default_plan,
            "plans": {n: {"rate": p.rate, "burst": p.burst, "quota": p.quota} for n, p in self.plans.items()},
            "allow": [str(n) for n in self.allow], "deny": [str(n) for n in self.deny],
            "cache": None if cache is None else {
                "ttl": cache.ttl, "headers": list(cache.headers), "query": list(cache.query),
                "methods": sorted(cache.methods), "invalidate_on_deploy": cache.invalidate_on_deploy,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EdgePolicy:
        keys = str(data.get("keys", "none"))
        if keys not in ("required", "optional", "none"):
            raise ValueError(f"keys must be required, optional or none, not {keys!r}")
        plans = {str(n): PlanLimits(float(p["rate"]), int(p["burst"]),
                                    int(p["quota"]) if p.get("quota") is not None else None)
                 for n, p in dict(data.get("plans") or {}).items()}
        raw = data.get("cache")
        cache = None if raw is None else CachePolicy(
            ttl=float(raw["ttl"]), headers=tuple(str(h).lower() for h in raw.get("headers", ())),
            query=tuple(map(str, raw.get("query", ()))),
            methods=frozenset(str(m).upper() for m in raw.get("methods", ("GET",))),
            invalidate_on_deploy=bool(raw.get("invalidate_on_deploy", True)),
        )
        default = data.get("default_plan")
        return cls(keys=keys, plans=plans, default_plan=str(default) if default else None,
                   allow=tuple(ipaddress.ip_network(str(n)) for n in data.get("allow", ())),
                   deny=tuple(ipaddress.ip_network(str(n)) for n in data.get("deny", ())), cache=cache)


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second (monotonic time)."""

    def __init__(self, limits: PlanLimits, now: float) -> None:
        self.limits = limits
        self.tokens = float(limits.burst)
        self.at = now

    def take(self, now: float) -> float | None:
        """Take one token: None when granted, else the seconds until one is available."""
        rate, burst = self.limits.rate, self.limits.burst
        self.tokens = min(float(burst), self.tokens + (now - self.at) * rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / rate


class DailyQuota:
    """Requests admitted per UTC day for one key."""

    def __init__(self) -> None:
        self.day = ""
        self.used = 0

    def take(self, quota: int, now: float) -> float | None:
        """Count one request: None when within ``quota``, else seconds until the next UTC day."""
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        day = moment.date().isoformat()
        if day != self.day:
            self.day, self.used = day, 0
        if self.used >= quota:
            midnight = dt.datetime.combine(moment.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
            return (midnight - moment).total_seconds()
        self.used += 1
        return None


def retry_after(seconds: float) -> str:
    """``Retry-After`` in whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    expires: float  # monotonic
    status: int
    reason: str | None
    headers: tuple[tuple[str, str], ...]
    body: bytes


class ResponseCache:
    """2xx answers by cache key until ``expires``; ``clear`` empties it (a deployment)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: dict[tuple[str, ...], CachedAnswer] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...], now: float) -> CachedAnswer | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires <= now:
                del self._entries[key]
                return None
            return entry

    def put(self, key: tuple[str, ...], answer: CachedAnswer) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.pop(next(iter(self._entries)))  # the oldest insertion
            self._entries[key] = answer

    def clear(self) -> int:
        with self._lock:
            dropped = len(self._entries)
            self._entries.clear()
        return dropped


class EdgeCounters:
    """hit/miss/throttled/denied per key name, per second (``""``: requests without a key)."""

    def __init__(self, retention: float = 3600.0) -> None:
        self._series: dict[str, PerSecondSeries] = {}
        self._retention = retention
        self._lock = threading.Lock()

    def count(self, key: str, at: float, what: str) -> None:
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = PerSecondSeries(COUNTS, self._retention)
            series.record(at, **{what: 1})

    def window(self, since: float, until: float) -> list[EdgeCounts]:
        """Counts of every key seen, over the seconds overlapping ``[since, until)``."""
        with self._lock:
            windows = {key: series.window(since, until) for key, series in self._series.items()}
        return [EdgeCounts(key, *(w.count(name) for name in COUNTS)) for key, w in sorted(windows.items())]
