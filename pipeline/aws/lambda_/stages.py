"""``InvokeStages``: test stages that invoke a slot's alias directly, without HTTP.

For functions that are not behind the HTTP API (or where it cannot be reached from the
CI runner), the test route of a slot is the slot alias itself, written
``lambda://<function>:<alias>``. The test stage invokes it once per smoke event and passes
when none fails (same rules as the pre-traffic smoke test). A load stage needs HTTP, so it
fails here with a reason instead of silently passing. Events are sent as the pre-traffic
smoke test sends them (``pipeline.aws.lambda_.readiness.invocation``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.aws.lambda_.api import LambdaApi
from pipeline.aws.lambda_.readiness import invocation, invocation_failure
from pipeline.core.errors import PipelineError
from pipeline.core.model import StageResult

__all__ = ["SCHEME", "InvokeStages", "invoke_endpoint"]

SCHEME = "lambda://"


def invoke_endpoint(function: str, alias: str) -> str:
    return f"{SCHEME}{function}:{alias}"


class InvokeStages:
    """StageRunner port over direct invocations. ``client`` is a boto3 Lambda client."""

    def __init__(self, client: Any, events: Sequence[object], route: str = "/*") -> None:
        self.client = client
        self.events = tuple(events)
        self.route = route

    def run(self, stage: str, endpoint: str, timeout: float) -> StageResult:
        if not endpoint.startswith(SCHEME) or ":" not in endpoint[len(SCHEME):]:
            return StageResult(False, f"{stage} stage cannot run: {endpoint!r} is not a {SCHEME} route")
        function, _, alias = endpoint[len(SCHEME):].rpartition(":")
        if stage != "test":
            return StageResult(
                False,
                f"{stage} stage cannot run against {endpoint}: it needs the HTTP test route",
            )
        if not self.events:
            return StageResult(True, f"no smoke events configured for {function}: nothing to test")
        api = LambdaApi(self.client, function)
        for number, event in enumerate(self.events, start=1):
            call = invocation(event, self.route)
            try:
                failure = invocation_failure(api.invoke(alias, call.event), call.expect)
            except PipelineError as exc:
                failure = exc.message
            if failure is not None:
                why = f"event {number}/{len(self.events)} on {function}:{alias}: {failure}"
                return StageResult(False, why)
        return StageResult(True, f"{len(self.events)} event(s) passed on {function}:{alias}")
