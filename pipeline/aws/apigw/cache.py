"""The stage cache of a service's REST API, emptied when a deployment moves traffic.

``CacheFlushingRouter`` wraps the service's ``TrafficRouter`` (the Lambda alias or the
ALB rule): when ``set_weights`` changes the split, it flushes the REST API's stage cache
(``FlushStageCache``), so answers of the old release are not served from the cache in
front of the new one. API Gateway flushes a whole stage at once (it has no per-resource
flush); the stage serves only this service's route, so "the routes the deployment
changes" are the stage. A flush that fails is reported as a transient platform error:
the engine retries the step, which finds the weights already set and flushes again.
"""

from __future__ import annotations

from typing import Any

from pipeline.aws.apigw.rest import RestApi
from pipeline.aws.apigw.spec import EdgeSpec
from pipeline.core.model import Weights
from pipeline.core.ports import TrafficRouter

__all__ = ["CacheFlushingRouter", "StageCache"]

# FlushStageCache is DELETE /restapis/{id}/stages/{stage}/cache/data; finding the API, GET
IAM_ACTIONS: frozenset[str] = frozenset({"apigateway:GET", "apigateway:DELETE"})


class StageCache:
    """The cache of the stage ``live`` of ``spec``'s REST API."""

    def __init__(self, client: Any, spec: EdgeSpec) -> None:
        self.rest = RestApi(client, spec)
        self._api_id = ""

    def flush(self) -> bool:
        """Empty the cache; False when there is none to empty (no REST API or stage yet:
        the ``api:`` block was added and bootstrap has not run, so nothing is cached)."""
        if not self._api_id:
            found = self.rest.find()
            if found is None:
                return False
            self._api_id = found.api_id
        return self.rest.flush_cache(self._api_id)


class CacheFlushingRouter:
    """``inner`` with the stage cache flushed after each change of the split."""

    def __init__(self, inner: TrafficRouter, cache: StageCache) -> None:
        self.inner = inner
        self.cache = cache
        self.owed = False  # a change of the split whose flush has not succeeded yet

    def set_weights(self, weights: Weights) -> None:
        before = self.inner.get_weights()
        self.inner.set_weights(weights)
        if before != weights or self.owed:
            self.owed = True
            self.cache.flush()
            self.owed = False

    def get_weights(self) -> Weights | None:
        return self.inner.get_weights()
