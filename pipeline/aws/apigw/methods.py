"""Patches that bring an existing method or the stage of the REST API to what the ``api:``
block says.

A method's ``apiKeyRequired`` and request parameters follow ``keys`` and ``cache.key``: a
block switched to ``keys: required`` must make API Gateway ask for keys on methods that
exist already. Pure: the ``UpdateMethod`` / ``UpdateIntegration`` patch operations
(https://docs.aws.amazon.com/apigateway/latest/api/patch-operations.html). The
integration's ``cacheKeyParameters`` of a cached method are its request parameters, so
they are patched with them. The stage's cache cluster and per-method cache settings
follow ``cache`` (``stage_patch``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.aws.apigw.spec import EdgeSpec

if TYPE_CHECKING:
    from pipeline.aws.apigw.rest import StageInfo

__all__ = ["MethodInfo", "integration_patch", "method_patch", "stage_patch"]

CACHE_SIZE = "0.5"  # GB, the smallest cache cluster

Ops = list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class MethodInfo:
    """A method as API Gateway has it."""

    key_required: bool
    parameters: dict[str, bool] = field(default_factory=dict)


def method_patch(current: MethodInfo, key_required: bool, parameters: dict[str, bool]) -> Ops:
    """What makes ``current`` require a key as asked and declare ``parameters`` ([]: it does)."""
    ops: Ops = []
    if current.key_required != key_required:
        ops.append({"op": "replace", "path": "/apiKeyRequired", "value": str(key_required).lower()})
    for name in sorted(set(parameters) | set(current.parameters)):
        path = f"/requestParameters/{name}"
        if name not in parameters:
            ops.append({"op": "remove", "path": path})
        elif name not in current.parameters:
            ops.append({"op": "add", "path": path, "value": str(parameters[name]).lower()})
        elif current.parameters[name] != parameters[name]:
            ops.append({"op": "replace", "path": path, "value": str(parameters[name]).lower()})
    return ops


def integration_patch(before: list[str], after: list[str]) -> Ops:
    """The ``cacheKeyParameters`` changes from ``before`` to ``after``."""
    ops: Ops = [
        {"op": "remove", "path": f"/cacheKeyParameters/{p}"} for p in sorted(set(before) - set(after))
    ]
    ops += [{"op": "add", "path": f"/cacheKeyParameters/{p}"} for p in sorted(set(after) - set(before))]
    return ops


def stage_patch(spec: EdgeSpec, stage: StageInfo | None) -> Ops:
    """The patch operations that make the stage's cache as configured ([]: it is)."""
    wanted = spec.method_settings()
    enabled = spec.api.cache is not None
    current_enabled = stage.cache_enabled if stage else False
    settings = stage.method_settings if stage else {}
    ops: Ops = []
    if current_enabled != enabled:
        ops.append({"op": "replace", "path": "/cacheClusterEnabled", "value": str(enabled).lower()})
        if enabled:
            ops.append({"op": "replace", "path": "/cacheClusterSize", "value": CACHE_SIZE})
    for key, setting in sorted(wanted.items()):
        have = settings.get(key, {})
        if have.get("cachingEnabled") is not True:
            ops.append({"op": "replace", "path": f"/{key}/caching/enabled", "value": "true"})
        if have.get("cacheTtlInSeconds") != setting["cacheTtlInSeconds"]:
            ops.append(
                {
                    "op": "replace",
                    "path": f"/{key}/caching/ttlInSeconds",
                    "value": str(setting["cacheTtlInSeconds"]),
                }
            )
    for key in sorted(set(settings) - set(wanted)):
        if settings[key].get("cachingEnabled"):
            ops.append({"op": "replace", "path": f"/{key}/caching/enabled", "value": "false"})
    return ops
