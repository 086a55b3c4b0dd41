"""Warm-up of the local Lambda runtime: ``count`` concurrent keep-warm pings per version.

``warm(runtime, function, qualifier, count)`` sends ``KEEP_WARM_EVENT`` to every version
the qualifier serves (an alias: each version it gives weight; else the one version), ``count``
at once, so ``count`` execution environments of each are initialised and idle afterwards:
concurrent pings cannot share a worker, and a worker returns to the idle list when its
ping is answered. The handler sees the ping (its environment is the one kept warm) and the
runtime does not count it in the function's metrics.

Runs on the runtime's loop, like every invocation method of ``LambdaRuntime``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import NotFoundError
from pipeline.core.keep_warm import KEEP_WARM_EVENT

if TYPE_CHECKING:
    from pipeline.local.lambda_.runtime import LambdaRuntime

__all__ = ["WarmReport", "versions_of", "warm"]


@dataclass(frozen=True, slots=True)
class WarmReport:
    """One version's warm-up: ``requested`` pings, ``warm`` answered, ``cold`` of them started
    a new environment, ``errors`` (one line each, deduplicated)."""

    function: str
    version: str
    requested: int
    warm: int
    cold: int
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"function": self.function, "version": self.version, "requested": self.requested,
                "warm": self.warm, "cold": self.cold, "errors": list(self.errors)}


def versions_of(runtime: LambdaRuntime, function: str, qualifier: str) -> list[str]:
    """The versions ``qualifier`` (an alias, a version number or ``$LATEST``) serves."""
    try:
        weights = runtime.get_alias(function, qualifier)
    except NotFoundError:
        return [runtime.version(function, qualifier).number]
    return [version for version, weight in weights.items() if weight > 0]


async def warm(runtime: LambdaRuntime, function: str, qualifier: str, count: int) -> list[WarmReport]:
    """``count`` concurrent pings of every version ``qualifier`` serves; one report per version.

    Raises NotFoundError for an unknown function or qualifier; what the handler does is reported.
    """
    reports = []
    for version in versions_of(runtime, function, qualifier):
        results = await asyncio.gather(
            *(runtime.invoke(function, version, dict(KEEP_WARM_EVENT)) for _ in range(max(0, count)))
        )
        errors = tuple(dict.fromkeys(r.error or f"status {r.status}" for r in results if not r.ok))
        reports.append(WarmReport(function, version, len(results), sum(r.ok for r in results),
                                  sum(r.cold_start for r in results), errors))
    return reports
