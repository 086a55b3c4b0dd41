"""How the local platform starts a service: its ``local:`` and ``ecs:`` settings as a ``Launch``.

``launch_of`` reads a validated ``ServiceConfig``; ``snapshot_launch`` reads the service's
``service.yaml`` *inside a release's snapshot*, which is what the plane runs: the command,
folder and environment of a release come from that release's own files in the plane's
store, never from a request (an image carries its own command the same way).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from pydantic import ValidationError

from pipeline.config.messages import validation_problems
from pipeline.config.service import ServiceConfig
from pipeline.config.source import read_document
from pipeline.core.errors import ConfigError
from pipeline.local.specs import HealthCheck, Launch

SERVICES_DIR = "services"


def launch_of(service: ServiceConfig) -> Launch:
    """How the local platform starts ``service``. ConfigError without a ``local:`` section."""
    local, ecs = service.local, service.ecs
    if local is None or ecs is None:
        raise ConfigError(
            [f"{SERVICES_DIR}/{service.name}/service.yaml: local: the local platform needs a `local:` "
             "section with the command that serves HTTP on $PORT"],
        )
    hc = ecs.health_check
    env = {**ecs.environment, **local.env}
    return Launch(
        command=tuple(shlex.split(local.command)),
        cwd=str(Path(SERVICES_DIR) / service.name / local.cwd),
        env=tuple(sorted(env.items())),
        replicas=local.replicas,
        health=HealthCheck(path=hc.path, interval=hc.interval, timeout=hc.timeout,
                           healthy_threshold=hc.healthy_threshold,
                           unhealthy_threshold=hc.unhealthy_threshold),
        drain_timeout=ecs.deregistration_delay,
    )


def snapshot_launch(snapshot: Path, service: str) -> Launch:
    """``launch_of`` the ``services/<service>/service.yaml`` of the snapshot rooted at ``snapshot``.

    Raises ConfigError (with file:line) when that file is missing or invalid.
    """
    file = f"{SERVICES_DIR}/{service}/service.yaml"
    doc = read_document(snapshot, file, missing=f"the release has no {file}: commit it")
    problems = list(doc.problems)
    if not problems and not isinstance(doc.data, dict):
        problems.append(doc.problem((), "the top level must be a mapping"))
    if problems:
        raise ConfigError([f"in the release: {p}" for p in problems])
    try:
        config = ServiceConfig.model_validate(doc.data)
    except ValidationError as exc:
        problems = validation_problems(doc, ServiceConfig, exc)
        raise ConfigError([f"in the release: {p}" for p in problems]) from exc
    return launch_of(config)
