"""Task definitions: rendered from the service's settings and a release, compared with AWS's.

``render()`` is pure: the ``RegisterTaskDefinition`` arguments for one release (Fargate,
awsvpc, the image pinned by digest, environment, secrets from SSM / Secrets Manager ARNs,
awslogs logging, a container health check). ``same_definition()`` decides whether a
described revision is that rendering, comparing only the keys the toolkit sets (AWS adds
defaults such as ``cpu: 0`` or ``mountPoints: []`` to what it stores), so a revision is
registered only when something really changed.
"""

from __future__ import annotations

from typing import Any

from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.core.model import Release

# ECS limits for container health checks (seconds / counts)
_INTERVAL = (5, 300)
_TIMEOUT = (2, 60)
_RETRIES = (1, 10)
_START_PERIOD = (0, 300)


def image_of(env: AwsEnvironment, spec: EcsServiceSpec, release: Release) -> str:
    """The image reference to run: ``release.image`` or ``<registry>/<svc>@<digest>``; never a tag."""
    if release.image and "@sha256:" in release.image:
        return release.image
    return f"{env.ecr_registry}/{spec.name}@{release.digest}"


def log_group(env: AwsEnvironment, spec: EcsServiceSpec) -> str:
    return env.log_group or f"/pipeline/{env.name}/{spec.name}"


def render(env: AwsEnvironment, spec: EcsServiceSpec, image: str) -> dict[str, Any]:
    """The ``RegisterTaskDefinition`` keyword arguments for ``image``. Pure."""
    container: dict[str, Any] = {
        "name": spec.container,
        "image": image,
        "essential": True,
        "memory": spec.memory,  # container-level too: the whole task is this one container
        "portMappings": [{"containerPort": spec.port, "protocol": "tcp"}],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group(env, spec),
                "awslogs-region": env.region,
                "awslogs-stream-prefix": spec.name,
                "awslogs-create-group": "true",
            },
        },
        "healthCheck": _health_check(spec),
    }
    if spec.environment:
        container["environment"] = [{"name": k, "value": v} for k, v in sorted(spec.environment)]
    if spec.secrets:
        container["secrets"] = [{"name": k, "valueFrom": arn} for k, arn in sorted(spec.secrets)]
    definition: dict[str, Any] = {
        "family": spec.family,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": str(spec.cpu),
        "memory": str(spec.memory),
        "executionRoleArn": env.execution_role(),
        "containerDefinitions": [container],
    }
    if env.task_role_arn:
        definition["taskRoleArn"] = env.task_role_arn
    return definition


def _health_check(spec: EcsServiceSpec) -> dict[str, Any]:
    """A container health check against the same path the target group checks.

    Needs ``curl`` or ``wget`` in the image; the ALB target health check is what readiness
    is judged on, this one lets ECS replace a wedged container early.
    """
    hc = spec.health_check
    url = f"http://localhost:{spec.port}{hc.path}"
    return {
        "command": ["CMD-SHELL", f"curl -fsS {url} >/dev/null || wget -q -O /dev/null {url} || exit 1"],
        "interval": _clamp(hc.interval, _INTERVAL),
        "timeout": _clamp(hc.timeout, _TIMEOUT),
        "retries": _clamp(hc.unhealthy_threshold, _RETRIES),
        "startPeriod": _clamp(hc.interval * hc.healthy_threshold, _START_PERIOD),
    }


def _clamp(value: float, bounds: tuple[int, int]) -> int:
    low, high = bounds
    return int(min(high, max(low, round(value))))


def same_definition(described: dict[str, Any], rendered: dict[str, Any]) -> bool:
    """True when every key ``rendered`` sets has the same value in ``described``.

    Keys AWS adds are ignored; lists must match element by element; a missing list in the
    description equals an empty one.
    """
    return _covers(described, rendered)


def _covers(have: Any, want: Any) -> bool:
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return False
        return all(_covers(have.get(key, _missing(value)), value) for key, value in want.items())
    if isinstance(want, list):
        if not isinstance(have, list) or len(have) != len(want):
            return False
        return all(_covers(h, w) for h, w in zip(have, want, strict=True))
    return bool(have == want or str(have) == str(want))


def _missing(value: Any) -> Any:
    return type(value)() if isinstance(value, list | dict) else None
