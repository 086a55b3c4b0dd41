"""Cold starts of a request chain on the local Lambda runtime, for the load stage's report.

``RuntimeColdStarts`` reads each function's per-version metrics over the control API and
adds them up across versions (a canary runs two). It satisfies
``pipeline.loadtest.coldstarts.ColdStartSource`` structurally, so neither package imports
the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.core.errors import NotFoundError
from pipeline.local.lambda_.control_client import LambdaControlClient

__all__ = ["RuntimeColdStarts"]


class RuntimeColdStarts:
    """``chain``: (service, function) pairs in the order a request travels (Lambda ones only)."""

    def __init__(self, client: LambdaControlClient, chain: Sequence[tuple[str, str]]) -> None:
        self._client = client
        self._chain = tuple(chain)

    def cold_starts(self, since: float, until: float) -> list[Any]:
        """A ``FunctionColdStarts`` per function that exists (functions never deployed are left out)."""
        from pipeline.loadtest.coldstarts import FunctionColdStarts  # noqa: PLC0415 - optional package

        found = []
        for service, function in self._chain:
            try:
                described = self._client.call("GET", f"functions/{function}")
                versions = [str(v["version"]) for v in described["versions"]]
            except NotFoundError:
                continue
            invocations = cold = 0
            for version in versions:
                m = self._client.metrics(function, version, since, until)
                invocations, cold = invocations + int(m["invocations"]), cold + int(m["cold_starts"])
            found.append(FunctionColdStarts(service, function, invocations, cold))
        return found
