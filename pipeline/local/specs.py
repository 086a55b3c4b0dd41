"""What the local plane runs: value objects shared by the plane and its adapters.

A ``RouteSpec`` travels as JSON over the control API. A ``ReleaseSpec`` is built by the
plane itself (``pipeline.local.plane.releases``: a provision request names only a digest
and the numbers of its ``Launch``) and persisted by it (``to_dict``/``from_dict``) so that
``pipeline local up`` after a ``down`` brings the same slots back.
Times are seconds; paths are absolute.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """How a replica is judged healthy (the service's ``ecs.health_check``).

    A new replica joins the rotation after its first passing check (as a new ALB target
    does). A healthy one leaves it after ``unhealthy_threshold`` consecutive failures and
    comes back after ``healthy_threshold`` passes. One that fails ``unhealthy_threshold``
    more checks, or never passed within ``start_period`` seconds of starting, is killed and
    restarted. ``interval``, ``timeout`` and ``start_period`` are seconds.
    """

    path: str = "/health"
    interval: float = 5.0
    timeout: float = 2.0
    healthy_threshold: int = 2
    unhealthy_threshold: int = 2
    start_period: float = 30.0


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start a replica of any release of a service.

    ``command`` runs with ``cwd = snapshot / cwd`` and the environment: the allow-list of
    ``pipeline.local.environ`` + ``env`` + ``PORT`` (a free port per replica) + ``PIPELINE_*``
    facts (service, environment, slot, version, digest, replica index). ``drain_timeout`` bounds how long
    a stopping replica waits for its in-flight requests; ``stop_timeout`` how long it has
    between SIGTERM and SIGKILL.
    """

    command: tuple[str, ...]
    cwd: str = "."
    env: tuple[tuple[str, str], ...] = ()
    replicas: int = 1
    health: HealthCheck = HealthCheck()
    drain_timeout: float = 10.0
    stop_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class ReleaseSpec:
    """``launch.replicas`` replicas of one release of one service, in one slot of one
    environment; ``snapshot`` is the release's snapshot root. On the wire the launch's
    fields sit beside the release's (one flat object)."""

    service: str
    environment: str
    version: str
    digest: str
    snapshot: str
    launch: Launch

    def __post_init__(self) -> None:
        if self.launch.replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {self.launch.replicas}")
        if not self.launch.command:
            raise ValueError("command must not be empty")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = asdict(self)
        launch: dict[str, Any] = data.pop("launch")
        launch["command"] = list(self.launch.command)
        launch["env"] = dict(self.launch.env)
        return data | launch

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReleaseSpec:
        """Inverse of ``to_dict``. Raises KeyError, TypeError or ValueError on bad input."""
        values = dict(data)
        own = {name: values.pop(name) for name in ("service", "environment", "version", "digest", "snapshot")}
        values["command"] = tuple(str(a) for a in values["command"])
        values["env"] = tuple(sorted((str(k), str(v)) for k, v in dict(values.get("env", {})).items()))
        values["health"] = HealthCheck(**values.get("health", {}))
        return cls(**own, launch=Launch(**values))


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """A service's rule on its environment's listener: ALB path ``pattern`` and ``priority``
    (lower wins); ``kind`` "ecs" routes to replicas, "lambda" to the Lambda runtime."""

    pattern: str
    priority: int = 100
    kind: str = "ecs"

    def __post_init__(self) -> None:
        if self.kind not in ("ecs", "lambda"):
            raise ValueError(f"route kind must be 'ecs' or 'lambda', got {self.kind!r}")
        if not self.pattern.startswith("/"):
            raise ValueError(f"route path pattern must start with '/', got {self.pattern!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RouteSpec:
        return cls(pattern=str(data["pattern"]), priority=int(data.get("priority", 100)),
                   kind=str(data.get("kind", "ecs")))
