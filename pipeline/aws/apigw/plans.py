"""Usage plans of a service's REST API: the ``api:`` block's plans as API Gateway's.

A plan's ``rate``/``burst`` are the usage plan's throttle (a token bucket per key, as the
local router's) and its ``quota`` the requests per day (period ``DAY``, UTC). Pure: what to
create, and the patch operations that make an existing plan as configured.
"""

from __future__ import annotations

from typing import Any

from pipeline.aws.apigw.rest import UsagePlanInfo
from pipeline.aws.apigw.spec import STAGE
from pipeline.config.api import UsagePlan

__all__ = ["patch_operations", "quota", "throttle"]


def throttle(plan: UsagePlan) -> dict[str, Any]:
    return {"rateLimit": plan.rate, "burstLimit": plan.bucket}


def quota(plan: UsagePlan) -> dict[str, Any] | None:
    return {"limit": plan.quota, "period": "DAY"} if plan.quota is not None else None


def _number(value: float) -> str:
    """A patch value: ``50`` rather than ``50.0`` (both are numbers to API Gateway)."""
    return f"{value:g}"


def _differs(have: Any, want: float) -> bool:
    try:
        return float(have) != float(want)
    except (TypeError, ValueError):
        return True


def patch_operations(found: UsagePlanInfo, plan: UsagePlan, api_id: str) -> list[dict[str, str]]:
    """What makes ``found`` bound to the stage with ``plan``'s limits ([]: it is)."""
    ops: list[dict[str, str]] = []
    if f"{api_id}:{STAGE}" not in found.stages:
        ops.append({"op": "add", "path": "/apiStages", "value": f"{api_id}:{STAGE}"})
    for key, value in throttle(plan).items():
        if _differs(found.throttle.get(key), value):
            ops.append({"op": "replace", "path": f"/throttle/{key}", "value": _number(value)})
    wanted = quota(plan)
    if wanted is not None and (
        _differs(found.quota.get("limit"), wanted["limit"]) or found.quota.get("period") != "DAY"
    ):
        ops.append({"op": "replace", "path": "/quota/limit", "value": str(wanted["limit"])})
        ops.append({"op": "replace", "path": "/quota/period", "value": "DAY"})
    if wanted is None and found.quota.get("limit"):
        ops.append({"op": "remove", "path": "/quota"})
    return ops
