"""Warm-up of the dependency chain a Lambda service calls, before its new version gets traffic.

A service declares what it calls (``calls:`` in service.yaml). Before a shift the chain is
warmed in order, deepest dependency first, so that the first real requests after the shift
meet no cold start on any hop:

- a Lambda dependency: ``count`` concurrent invocations of its ``live`` alias with the
  keep-warm event (``pipeline.core.keep_warm``), which its handler answers at once;
- an ECS dependency: one HTTP GET of its health path through the environment's URL
  (``aws.url``); ECS tasks are long-running, the GET only wakes what sits behind it.

Warming is best effort: failures are reported in the notes, never raised (the smoke tests
and the analysis judge the release).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.aws.lambda_.api import LambdaApi
from pipeline.aws.lambda_.readiness import warm_up
from pipeline.config.calls import warm_order
from pipeline.core.keep_warm import KEEP_WARM_EVENT
from pipeline.loadtest.smoke import routed_path

if TYPE_CHECKING:
    from pipeline.config import ServiceConfig

__all__ = ["ChainWarmer", "FunctionHop", "Hop", "HttpHop", "chain_hops", "http_get"]

HTTP_TIMEOUT = 10.0  # seconds per health GET


@dataclass(frozen=True, slots=True)
class FunctionHop:
    """A Lambda function of the chain, warmed at its ``qualifier`` (the alias users call)."""

    function: str
    qualifier: str = "live"


@dataclass(frozen=True, slots=True)
class HttpHop:
    """An ECS service of the chain, woken by a GET of ``url`` (None: the environment has no URL)."""

    service: str
    url: str | None


Hop = FunctionHop | HttpHop


def chain_hops(
    services: Mapping[str, ServiceConfig], service: str, environment: str, url: str | None
) -> tuple[Hop, ...]:
    """The hops ``service`` calls (``calls:``, transitively), deepest first, in ``environment``
    whose public URL is ``url`` (``aws.url``; None when unset). Functions are named
    ``<service>-<environment>`` as ``LambdaSpec.function``."""
    hops: list[Hop] = []
    for name in warm_order(service, lambda n: services[n].calls if n in services else ()):
        dependency = services.get(name)
        if dependency is None:
            continue
        if dependency.kind == "lambda":
            hops.append(FunctionHop(f"{name}-{environment}"[:64]))
        elif dependency.ecs is not None:
            path = routed_path(dependency.ecs.route.path, dependency.ecs.health_check.path)
            hops.append(HttpHop(name, url.rstrip("/") + path if url else None))
    return tuple(hops)


def http_get(url: str) -> int:
    """The status of one GET of ``url`` (raises OSError when it cannot be reached)."""
    request = urllib.request.Request(url, headers={"user-agent": "pipeline-warm-up"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class ChainWarmer:
    """Warms ``hops`` (deepest first) through the Lambda ``client``; ``count`` environments per function."""

    def __init__(self, client: Any, hops: Sequence[Hop], count: int = 1,
                 get: Callable[[str], int] = http_get) -> None:
        self.client = client
        self.hops = tuple(hops)
        self.count = max(1, count)
        self.get = get

    def __call__(self) -> str:
        """Warm every hop in order; one note saying what each did ("" without hops)."""
        notes = [self._warm(hop) for hop in self.hops]
        return f"warmed the chain: {', '.join(notes)}" if notes else ""

    def _warm(self, hop: Hop) -> str:
        if isinstance(hop, HttpHop):
            if hop.url is None:
                return f"{hop.service}: no aws.url to reach it"
            try:
                status = self.get(hop.url)
            except OSError as exc:
                return f"{hop.service}: GET failed ({exc})"
            return f"{hop.service} GET {status}"
        api = LambdaApi(self.client, hop.function)
        result = warm_up(api, hop.qualifier, self.count, dict(KEEP_WARM_EVENT))
        note = f"{hop.function}:{hop.qualifier} {result.succeeded}/{result.requested}"
        return note + (f" ({'; '.join(result.errors)[:160]})" if result.errors else "")
