"""Task definitions: rendered from the service's settings and a release, compared with AWS's.

``render()`` is pure: the ``RegisterTaskDefinition`` arguments for one release (Fargate,
awsvpc, the image pinned by digest, environment, secrets from SSM / Secrets Manager ARNs,
awslogs logging into a log group that bootstrap created, an optional container health
check). ``same_definition()`` decides whether a described revision is that rendering, so a
revision is registered only when something really changed:

- keys AWS adds to what it stores (``cpu: 0``, ``mountPoints: []``, a port mapping's
  ``hostPort``...) are ignored; keys the toolkit manages but did not render this time
  (``healthCheck``, ``environment``, ``secrets``, ``taskRoleArn``) must be absent or empty;
- lists of objects are compared as sets: ECS returns ``environment``, ``secrets``,
  ``portMappings`` and the like in its own order, not the order sent
  (https://github.com/aws/aws-sdk-java/issues/3043,
  https://github.com/hashicorp/terraform-provider-aws/issues/3035); lists of strings keep
  their order (a command is a sequence) except ``requiresCompatibilities``;
- a missing list equals an empty one; the ``awslogs`` options map must be exactly the
  rendered one (ECS stores it as sent, so an extra option is a real difference).
"""

from __future__ import annotations

from typing import Any

from pipeline.aws.ecs.collector import with_collector
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.core.model import Release

# ECS limits for container health checks (seconds / counts)
_INTERVAL = (5, 300)
_TIMEOUT = (2, 60)
_RETRIES = (1, 10)
_START_PERIOD = (0, 300)


def image_of(env: AwsEnvironment, spec: EcsServiceSpec, release: Release) -> str:
    """The image reference to run, never a tag: ``release.image`` when it is pinned by digest
    in the environment's own registry (or the environment names none), else
    ``<registry>/<svc>@<digest>`` in the environment's registry (a promotion from another
    account or region: ``pipeline.aws.ecr.mirror.ensure_image`` copies it there first)."""
    pinned = "@sha256:" in release.image
    if pinned and (not env.ecr_registry or release.image.startswith(env.ecr_registry + "/")):
        return release.image
    return f"{env.ecr_registry}/{spec.name}@{release.digest}"


def log_group(env: AwsEnvironment, spec: EcsServiceSpec) -> str:
    return env.log_group or f"/pipeline/{env.name}/{spec.name}"


def render(env: AwsEnvironment, spec: EcsServiceSpec, image: str) -> dict[str, Any]:
    """The ``RegisterTaskDefinition`` keyword arguments for ``image``. Pure.

    No ``awslogs-create-group``: it needs ``logs:CreateLogGroup``, which the managed
    ``AmazonECSTaskExecutionRolePolicy`` lacks, so tasks would fail to start; bootstrap
    creates the log group instead.
    """
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
            },
        },
    }
    if spec.health_check.container:
        container["healthCheck"] = _health_check(spec)
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
    if env.otlp_endpoint:  # traces: an ADOT collector sidecar (pipeline.aws.ecs.collector)
        definition = with_collector(definition, service=spec.name, region=env.region,
                                    endpoint=env.otlp_endpoint, logging=container["logConfiguration"])
    return definition


def _health_check(spec: EcsServiceSpec) -> dict[str, Any]:
    """A container health check against the same path the target group checks.

    Needs ``curl`` or ``wget`` in the image (``health_check.container: false`` drops it);
    the ALB target health check is what readiness is judged on, this one lets ECS replace
    a wedged container early. ``startPeriod`` is the service's own setting: failures while
    the application starts do not count against ``retries``.
    """
    hc = spec.health_check
    url = f"http://localhost:{spec.port}{hc.path}"
    return {
        "command": ["CMD-SHELL", f"curl -fsS {url} >/dev/null || wget -q -O /dev/null {url} || exit 1"],
        "interval": _clamp(hc.interval, _INTERVAL),
        "timeout": _clamp(hc.timeout, _TIMEOUT),
        "retries": _clamp(hc.unhealthy_threshold, _RETRIES),
        "startPeriod": _clamp(hc.start_period, _START_PERIOD),
    }


def _clamp(value: float, bounds: tuple[int, int]) -> int:
    low, high = bounds
    return int(min(high, max(low, round(value))))


# Keys the toolkit sets only sometimes: when it does not render them, a revision that has
# them (non-empty) is a different definition.
_OPTIONAL = {
    "task": ("taskRoleArn",),
    "container": ("healthCheck", "environment", "secrets", "dependsOn"),
}
_UNORDERED_STRINGS = frozenset({"requiresCompatibilities", "compatibilities"})
_EXACT_MAPS = frozenset({"options"})  # logConfiguration.options: ECS stores it as sent


def same_definition(described: dict[str, Any], rendered: dict[str, Any]) -> bool:
    """True when ``described`` (DescribeTaskDefinition) is the revision ``rendered`` asks for.

    See the module docstring for the rules (AWS-added keys ignored, lists of objects as
    sets, managed optional keys absent).
    """
    if not _covers(described, rendered, ""):
        return False
    if any(described.get(k) and k not in rendered for k in _OPTIONAL["task"]):
        return False
    wanted = {c.get("name"): c for c in rendered.get("containerDefinitions", [])}
    for container in described.get("containerDefinitions") or []:
        mine = wanted.get(container.get("name"), {})
        if any(container.get(k) and k not in mine for k in _OPTIONAL["container"]):
            return False
    return True


def _covers(have: Any, want: Any, key: str) -> bool:
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return False
        if key in _EXACT_MAPS and set(have) != set(want):
            return False
        return all(_covers(have.get(k, _missing(v)), v, k) for k, v in want.items())
    if isinstance(want, list):
        if have is None:
            have = []
        if not isinstance(have, list) or len(have) != len(want):
            return False
        if all(isinstance(w, dict) for w in want) or key in _UNORDERED_STRINGS:
            return _same_set(have, want, key)
        return all(_covers(h, w, key) for h, w in zip(have, want, strict=True))
    return bool(have == want or str(have) == str(want))


def _same_set(have: list[Any], want: list[Any], key: str) -> bool:
    """Every wanted element covered by a distinct described one, in any order."""
    unused = list(have)
    for element in want:
        match = next((i for i, h in enumerate(unused) if _covers(h, element, key)), None)
        if match is None:
            return False
        unused.pop(match)
    return True


def _missing(value: Any) -> Any:
    return type(value)() if isinstance(value, list | dict) else None
