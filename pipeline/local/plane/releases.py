"""What a slot runs, decided by the plane: a provision request names a release, not a program.

``PUT /v1/envs/{env}/services/{svc}/slots/{slot}`` carries the release's ``digest`` and,
optionally, the numbers of its launch (``replicas``, ``health``, ``drain_timeout``,
``stop_timeout``: the deployer's config). The plane finds the release in its own store
(``SnapshotStore``: the snapshot ``pipeline deploy`` stored from a git commit), and takes
the command, folder and environment from that snapshot's ``services/<svc>/service.yaml``.
A request naming a command, a folder, an environment or a snapshot path is refused: the
control API never runs what a request says.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from pipeline.core.errors import ConfigError, NotFoundError, PlatformError
from pipeline.local.plane.environments import PlaneRequestError
from pipeline.local.registry import SnapshotStore
from pipeline.local.service_launch import snapshot_launch
from pipeline.local.specs import HealthCheck, ReleaseSpec

REFUSED = ("command", "cwd", "env", "snapshot", "launch", "environment", "version")
TUNABLE = ("replicas", "health", "drain_timeout", "stop_timeout")


def provision_body(digest: str, replicas: int, health: HealthCheck, drain_timeout: float,
                   stop_timeout: float) -> dict[str, Any]:
    """The body of a provision request (what ``LocalCompute`` sends)."""
    return {"digest": digest, "replicas": replicas, "health": asdict(health),
            "drain_timeout": drain_timeout, "stop_timeout": stop_timeout}


class ReleaseResolver:
    """Builds the ``ReleaseSpec`` of a provision request from the plane's store under ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self._store = SnapshotStore(state_dir)

    async def spec(self, environment: str, service: str, body: dict[str, Any]) -> ReleaseSpec:
        """The spec to run; PlaneRequestError (400/422) naming what is wrong otherwise."""
        named = sorted(k for k in body if k in REFUSED)
        if named:
            raise PlaneRequestError(
                400, f"refused: a provision request may not name {', '.join(named)}",
                "the plane runs the command and environment of the release's own service.yaml, from its "
                "own store; send the release's digest (and, optionally, " + ", ".join(TUNABLE) + ")",
            )
        unknown = sorted(k for k in body if k not in (*TUNABLE, "digest"))
        if unknown:
            raise PlaneRequestError(400, f"unknown keys in the provision request: {', '.join(unknown)}",
                                    "send digest, " + ", ".join(TUNABLE))
        digest = str(body.get("digest", ""))
        try:
            release = self._store.stored(service, digest)
            snapshot = await asyncio.to_thread(self._store.snapshot_dir, release)
            launch = snapshot_launch(snapshot, service)
        except (NotFoundError, ConfigError, PlatformError) as exc:
            why = f"cannot run {service} {digest[:19]}: {exc.message}"
            raise PlaneRequestError(422, why, exc.hint) from exc
        launch = replace(launch, **_tuning(body))
        return ReleaseSpec(service=service, environment=environment, version=release.version,
                           digest=release.digest, snapshot=str(snapshot), launch=launch)


def _tuning(body: dict[str, Any]) -> dict[str, Any]:
    """The numbers of the launch the request sets (TypeError/ValueError on bad values)."""
    tuning: dict[str, Any] = {}
    if "replicas" in body:
        tuning["replicas"] = int(body["replicas"])
    if "health" in body:
        tuning["health"] = HealthCheck(**dict(body["health"]))
    for key in ("drain_timeout", "stop_timeout"):
        if key in body:
            tuning[key] = float(body[key])
    return tuning
