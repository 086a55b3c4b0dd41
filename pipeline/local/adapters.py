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

from pipeline.core.errors import NotFoundError, PlatformError
from pipeline.core.model import Measurement, Release, Slot, SlotHealth, Weights
from pipeline.local.plane.control_client import PlaneClient
from pipeline.local.plane.releases import provision_body
from pipeline.local.specs import Launch, RouteSpec


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
    """``Compute`` on the plane's supervisor. ``snapshot(release)`` stores and extracts the
    release's source snapshot (``LocalRegistry.snapshot_dir``) in the plane's folder, where the
    plane finds it by digest; the plane runs the command and environment of the service.yaml
    in that snapshot, with the numbers of ``launch`` (replicas, health checks, timeouts)."""

    def __init__(self, client: PlaneClient, binding: ServiceBinding, launch: Launch,
                 snapshot: Callable[[Release], Path]) -> None:
        self._svc = PlaneService(client, binding)
        self._launch = launch
        self._snapshot = snapshot

    def provision(self, slot: Slot, release: Release) -> None:
        """Start ``launch.replicas`` replicas of ``release`` in ``slot``. Idempotent; returns
        before they are healthy. The slot becomes the test route's default."""
        self._snapshot(release)
        launch = self._launch
        body = provision_body(release.digest, launch.replicas, launch.health, launch.drain_timeout,
                              launch.stop_timeout)
        self._svc.call("PUT", f"/slots/{slot.value}", body)

    def health(self, slot: Slot, release: Release) -> SlotHealth:
        """Replicas of *this* release running and passing health checks, as the plane sees them.

        Raises PlatformError as soon as the plane sees the release cannot become ready (its
        replicas crash-loop or keep failing their health check), quoting why.
        """
        data = self._svc.call("GET", f"/slots/{slot.value}", query={"digest": release.digest})
        if data.get("failed"):
            b = self._svc.binding
            where = f"{b.service} in {slot.value} on {b.environment}"
            raise PlatformError(
                f"{release.short} of {where} cannot start: {data['failed']}",
                hint=f"fix the release and deploy again; replica logs: logs/{b.environment}/{b.service}/ "
                "in the plane's folder (.pipeline/)",
            )
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
