"""Port adapters of the local platform: Compute, TrafficRouter and Metrics over the plane's
control API, for one service in one environment.

Each adapter registers the environment (its router port) and the service's route on first
use, and again if the plane answers that it does not know them (a plane restarted without
its saved state), so no call depends on a prior ``pipeline local up``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.errors import NotFoundError
from pipeline.core.model import Measurement, Release, Slot, SlotHealth, Weights
from pipeline.local.plane.control_client import PlaneClient
from pipeline.local.specs import Launch, ReleaseSpec, RouteSpec


@dataclass(frozen=True, slots=True)
class ServiceBinding:
    """Where a service lives on the plane: ``environment`` served on ``port`` (and
    ``port + 1`` for the test route), with ``route`` on that listener."""

    environment: str
    port: int
    service: str
    route: RouteSpec

    @property
    def path(self) -> str:
        return f"/v1/envs/{self.environment}/services/{self.service}"


class PlaneService:
    """A client bound to one service; registers environment and route lazily."""

    def __init__(self, client: PlaneClient, binding: ServiceBinding) -> None:
        self.client = client
        self.binding = binding
        self._registered = False

    def register(self) -> None:
        """PUT the environment and the route (both idempotent)."""
        b = self.binding
        self.client.call("PUT", f"/v1/envs/{b.environment}", {"port": b.port})
        self.client.call("PUT", b.path, b.route.to_dict())
        self._registered = True

    def call(self, method: str, suffix: str = "", body: dict[str, Any] | None = None, *,
             query: dict[str, str] | None = None, timeout: float | None = None) -> dict[str, Any]:
        if not self._registered:
            self.register()
        path = self.binding.path + suffix
        try:
            return self.client.call(method, path, body, query=query, timeout=timeout)
        except NotFoundError:
            self.register()
            return self.client.call(method, path, body, query=query, timeout=timeout)


class LocalCompute:
    """``Compute`` on the plane's supervisor. ``snapshot(release)`` gives the directory of the
    release's source snapshot (``LocalRegistry.snapshot_dir``)."""

    def __init__(self, client: PlaneClient, binding: ServiceBinding, launch: Launch,
                 snapshot: Callable[[Release], Path]) -> None:
        self._svc = PlaneService(client, binding)
        self._launch = launch
        self._snapshot = snapshot

    def provision(self, slot: Slot, release: Release) -> None:
        """Start ``launch.replicas`` replicas of ``release`` in ``slot``. Idempotent; returns
        before they are healthy. The slot becomes the test route's default."""
        b = self._svc.binding
        spec = ReleaseSpec(service=b.service, environment=b.environment, version=release.version,
                           digest=release.digest, snapshot=str(self._snapshot(release)), launch=self._launch)
        self._svc.call("PUT", f"/slots/{slot.value}", spec.to_dict())

    def health(self, slot: Slot, release: Release) -> SlotHealth:
        """Replicas of *this* release running and passing health checks, as the plane sees them."""
        data = self._svc.call("GET", f"/slots/{slot.value}", query={"digest": release.digest})
        return SlotHealth(
            running=int(data["running"]), desired=int(data["desired"]), healthy=int(data["healthy"]),
            revision_matches=bool(data["revision_matches"]), detail=str(data.get("detail", "")),
        )

    def scale_down(self, slot: Slot) -> None:
        """Drain and stop ``slot``; returns once its processes are gone. Idempotent."""
        budget = self._launch.drain_timeout + self._launch.stop_timeout + 30.0
        self._svc.call("DELETE", f"/slots/{slot.value}", timeout=budget)

    def endpoint(self, slot: Slot) -> str:
        """Base URL of the environment's test listener reaching only ``slot``."""
        return str(self._svc.call("GET", "/endpoint", query={"slot": slot.value})["url"])


class LocalRouter:
    """``TrafficRouter`` on the environment's local router: integer weights per slot."""

    def __init__(self, client: PlaneClient, binding: ServiceBinding) -> None:
        self._svc = PlaneService(client, binding)

    def set_weights(self, weights: Weights) -> None:
        """Replace the split atomically; it applies from the next request. Idempotent."""
        self._svc.call("PUT", "/weights", weights.to_dict())

    def get_weights(self) -> Weights | None:
        """The split the router applies now; None until one was set."""
        data = self._svc.call("GET", "/weights").get("weights")
        return Weights(blue=int(data["blue"]), green=int(data["green"])) if data else None


class LocalMetrics:
    """``Metrics`` from the router's per-slot counters (1-second resolution).

    ``requests`` counts every answer the router gave for the slot (test route included),
    ``errors`` the 5xx ones (the router's own 502/503/504 too); ``p95_ms`` is interpolated
    from the latency histogram and is None for an empty window. ``extra`` carries p50_ms and
    p99_ms when known.
    """

    def __init__(self, client: PlaneClient, binding: ServiceBinding) -> None:
        self._svc = PlaneService(client, binding)

    def measure(self, slot: Slot, since: float, until: float) -> Measurement:
        query = {"slot": slot.value, "since": repr(since), "until": repr(until)}
        data = self._svc.call("GET", "/metrics", query=query)
        extra = tuple((k, float(data[k])) for k in ("p50_ms", "p99_ms") if data.get(k) is not None)
        p95 = data.get("p95_ms")
        return Measurement(
            requests=int(data["requests"]), errors=int(data["errors"]),
            p95_ms=float(p95) if p95 is not None else None, extra=extra,
        )
