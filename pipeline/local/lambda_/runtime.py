"""The local Lambda runtime: versions, aliases, concurrency and metrics, with real workers.

``LambdaRuntime`` lives in the local plane's process, on its event loop. It keeps AWS
Lambda's model (immutable versions published from a zip, aliases with weights per version,
reserved and provisioned concurrency, per-version metrics) and runs handlers for real:
each concurrent execution environment is a worker process (``lambda_worker``) that is
reused while warm; a cold start spawns one and really imports the handler module.

Concurrency: every function's executions in flight are counted. A function with reserved
concurrency ``n`` is throttled (429) above ``n``; functions without a reservation share
``concurrency_limit`` minus all reservations (the account's unreserved pool).

The configuration methods are synchronous and the invocation methods are coroutines; all
must be called from the loop that runs the runtime (it is not thread-safe; use
``LambdaServer`` from other threads). Configuration survives restarts (see
``lambda_registry``); warm workers and metrics do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from pipeline.core.errors import NotFoundError, PlatformError, UsageError
from pipeline.core.keep_warm import is_keep_warm
from pipeline.local.lambda_.control_api import lambda_app
from pipeline.local.lambda_.function_registry import FunctionRecord, Registry
from pipeline.local.lambda_.http_events import build_event, to_response, unavailable
from pipeline.local.lambda_.keepwarm import KeepWarmTimer
from pipeline.local.lambda_.metrics import MetricsBook
from pipeline.local.lambda_.model import (
    FUNCTION_ERROR,
    OK,
    THROTTLED,
    TIMED_OUT,
    InvokeResult,
    ProvisionedStatus,
    VersionSpec,
)
from pipeline.local.lambda_.pool import VersionPool
from pipeline.local.lambda_.tracing import InvocationTracer
from pipeline.local.lambda_.worker import InitFailed, Worker
from pipeline.local.messages import Answer

__all__ = ["InvokeResult", "LambdaRuntime", "lambda_app"]

_STATUS = {"ok": OK, "error": FUNCTION_ERROR, "died": FUNCTION_ERROR, "timeout": TIMED_OUT}
_THROTTLE_ERROR = {"errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded."}


class LambdaRuntime:
    """Lambda functions of the local platform, kept under ``work_dir``.

    ``seed`` makes the weighted choice of a version by an alias reproducible;
    ``idle_timeout`` (seconds) is how long an unused on-demand worker stays warm;
    ``clock`` (epoch seconds) timestamps metrics.
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        seed: int | None = None,
        concurrency_limit: int = 32,
        idle_timeout: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.work_dir = work_dir
        self._registry = Registry(work_dir)
        self._book = MetricsBook()
        self._rng = random.Random(seed)
        self._limit = concurrency_limit
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._pools: dict[tuple[str, str], VersionPool] = {}
        self._inflight: dict[str, int] = defaultdict(int)
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False
        self.keep_warm = KeepWarmTimer(self, work_dir)
        self.tracing = InvocationTracer()  # the plane turns it on (pipeline.local.plane.otlp)

    # --- versions and aliases -------------------------------------------------------

    def publish_version(
        self,
        function: str,
        zip_path: Path,
        handler: str,
        *,
        memory: int,
        timeout: float,
        environment: dict[str, str] | None = None,
    ) -> str:
        """Publish the package at ``zip_path`` as the function's next version; its number.

        The function is created by its first publish. Idempotent: the same package (by
        sha256) with the same configuration as the latest version returns that version.
        ``memory`` is MiB (recorded and shown to the handler, not enforced); ``timeout`` is
        seconds per invocation.
        """
        try:
            data = zip_path.read_bytes()
        except OSError as exc:
            raise UsageError(
                f"cannot publish {function}: cannot read {zip_path}: {exc.strerror}",
                hint="package the function first (pipeline.local.lambda_.package.write_package)",
            ) from exc
        return self.publish_package(function, data, handler, memory=memory, timeout=timeout,
                                    environment=environment)

    def publish_package(
        self,
        function: str,
        data: bytes,
        handler: str,
        *,
        memory: int,
        timeout: float,
        environment: dict[str, str] | None = None,
    ) -> str:
        """``publish_version`` of a package given as bytes (what the control API receives);
        the package is stored and unpacked in the runtime's own folder, within the size caps
        of ``pipeline.local.lambda_.package``."""
        self._check_open()
        spec, _ = self._registry.publish(function, data, handler, memory, timeout, dict(environment or {}))
        return spec.number

    def version(self, function: str, version: str) -> VersionSpec:
        """The published ``version`` (or ``$LATEST``) of ``function``. NotFoundError if absent."""
        return self._registry.function(function).version(version)

    def describe(self, function: str) -> dict[str, Any]:
        """Versions, aliases and concurrency settings of ``function``, as JSON-ready data."""
        record = self._registry.function(function)
        return {
            "function": function,
            "versions": [v.to_dict() for v in record.versions.values()],
            "aliases": {
                name: {"weights": a.weights, "description": a.description}
                for name, a in record.aliases.items()
            },
            "reserved_concurrency": record.reserved,
            "provisioned": {v: self.provisioned(function, v) for v in record.provisioned},
        }

    def set_alias(self, function: str, alias: str, weights: dict[str, float], description: str = "") -> None:
        """Point ``alias`` at versions with fractional weights summing to 1. Atomic, idempotent."""
        self._registry.set_alias(function, alias, weights, description)

    def get_alias(self, function: str, alias: str) -> dict[str, float]:
        """The alias's weights exactly as set. NotFoundError if there is no such alias."""
        return dict(self._registry.function(function).alias(alias).weights)

    def alias_description(self, function: str, alias: str) -> str:
        return self._registry.function(function).alias(alias).description

    # --- concurrency ----------------------------------------------------------------

    def set_reserved_concurrency(self, function: str, n: int | None) -> None:
        """Cap concurrent executions of ``function`` across its versions (None removes the cap)."""
        self._registry.set_reserved(function, n)

    def reserved_concurrency(self, function: str) -> int | None:
        return self._registry.function(function).reserved

    def set_provisioned_concurrency(self, function: str, version: str, n: int) -> None:
        """Keep ``n`` initialised workers of ``version`` (0 removes them). Idempotent.

        Returns at once; workers start in the background (``provisioned_status`` tells when
        they are READY). Call it from the runtime's loop, or they start on the next call that is.
        """
        self._check_open()
        spec = self.version(function, version)
        self._registry.set_provisioned(function, spec.number, n)
        self._pool(spec).set_provisioned(n)

    def provisioned_status(self, function: str, version: str) -> ProvisionedStatus:
        """READY once every provisioned worker is initialised (also when none is configured)."""
        status: ProvisionedStatus = self.provisioned(function, version)["status"]
        return status

    def provisioned(self, function: str, version: str) -> dict[str, Any]:
        """``{"requested", "ready", "status", "reason"}`` for ``version``'s provisioned concurrency."""
        spec = self.version(function, version)
        requested = self._registry.function(function).provisioned.get(spec.number, 0)
        status, ready, reason = self._pool(spec).status()
        return {"requested": requested, "ready": ready, "status": status, "reason": reason}

    # --- metrics and workers -------------------------------------------------------

    def metrics(self, function: str, version: str, since: float, until: float) -> dict[str, Any]:
        """Invocations, errors, throttles, cold starts and duration p95 (ms) in [since, until)."""
        spec = self.version(function, version)
        return self._book.window(function, spec.number, since, until).to_dict()

    def worker_pids(self, function: str | None = None) -> list[int]:
        """Process ids of the live workers (of ``function``, or of all functions)."""
        return [
            w.pid
            for (name, _), pool in self._pools.items()
            if function is None or name == function
            for w in pool.workers
            if w.alive
        ]

    # --- invocation -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the provisioned workers remembered from a previous run (optional)."""
        for record in self._registry.functions.values():
            for number in record.provisioned:
                self._pool(record.version(number)).top_up()
        self.keep_warm.start()

    async def invoke(self, function: str, alias_or_version: str, event: Any) -> InvokeResult:
        """Invoke ``function`` at an alias (weighted choice), a version number or ``$LATEST``.

        Never raises for what the handler does (see ``InvokeResult``); raises NotFoundError
        for an unknown function, version or alias. A keep-warm ping (``is_keep_warm``) runs
        like any event but is left out of the metrics: it is not a request.
        """
        self._check_open()
        record = self._registry.function(function)
        spec = record.resolve(alias_or_version, self._rng.random())
        with self.tracing.invocation(function, spec.number, event) as span:  # span: None when off
            result = await self._admitted(record, spec, alias_or_version, event)
            self.tracing.finish(span, cold_start=result.cold_start, throttled=result.throttled, ok=result.ok,
                                error=result.error, init_ms=result.init_ms)
        return result

    async def _admitted(self, record: FunctionRecord, spec: VersionSpec, alias_or_version: str,
                        event: Any) -> InvokeResult:
        function = record.name
        started = self._clock()
        if not self._admit(record):
            if not is_keep_warm(event):
                self._book.record(function, spec.number, started, throttled=True)
            return InvokeResult(THROTTLED, dict(_THROTTLE_ERROR), spec.number, throttled=True,
                                error="TooManyRequestsException: Rate Exceeded.")
        self._inflight[function] += 1
        try:
            result = await self._run(spec, alias_or_version, event)
        finally:
            self._inflight[function] -= 1
        if not is_keep_warm(event):
            self._book.record(function, spec.number, started, error=not result.ok,
                              cold_start=result.cold_start, duration_ms=result.duration_ms)
        return result

    async def invoke_http(
        self,
        function: str,
        request: web.Request,
        path_rule: str,
        *,
        qualifier: str = "live",
        raw_path: str | None = None,
    ) -> web.Response:
        """Invoke ``qualifier`` (the alias "live") with an HTTP API v2 event built from ``request``.

        ``raw_path`` is the path the function sees (default: the request's). Answers 429 on
        a throttle, 502 on a function error, 504 on a timeout, 503 when the function or the
        alias does not exist.
        """
        body = await request.read()
        event = build_event(request, body, raw_path=raw_path or request.path, path_rule=path_rule)
        try:
            result = await self.invoke(function, qualifier, event)
        except NotFoundError as exc:
            return _aiohttp(unavailable(exc.message))
        return _aiohttp(to_response(result))

    async def close(self) -> None:
        """Stop every worker process and background start. Idempotent."""
        self._closed = True
        await self.keep_warm.close()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for pool in list(self._pools.values()):
            await pool.close()

    # --- internals ---------------------------------------------------------------------

    async def _run(self, spec: VersionSpec, qualifier: str, event: Any) -> InvokeResult:
        pool = self._pool(spec)
        try:
            worker, cold = await pool.acquire()
        except InitFailed as exc:
            return InvokeResult(FUNCTION_ERROR, exc.error, spec.number, cold_start=True,
                                error=str(exc), init_ms=exc.init_ms)
        try:
            outcome = await worker.invoke(self._request(spec, qualifier, event), spec.timeout)
        finally:
            pool.release(worker)
        return InvokeResult(
            _STATUS[outcome.kind],
            outcome.payload,
            spec.number,
            cold_start=cold,
            duration_ms=outcome.ms,
            error=outcome.error,
            init_ms=worker.init_ms if cold else 0.0,
        )

    def _request(self, spec: VersionSpec, qualifier: str, event: Any) -> dict[str, Any]:
        return {
            "request_id": str(uuid.uuid4()),
            "deadline_ms": (time.time() + spec.timeout) * 1000.0,
            "arn": f"arn:aws:lambda:local:000000000000:function:{spec.function}:{qualifier}",
            "event": event,
            "trace": self.tracing.carrier(),  # the invocation span's traceparent, {} when off
        }

    def _admit(self, record: FunctionRecord) -> bool:
        """Whether one more execution of ``record`` fits its reservation or the unreserved pool."""
        if record.reserved is not None:
            return self._inflight[record.name] < record.reserved
        functions = self._registry.functions
        reserved = sum(f.reserved or 0 for f in functions.values())
        unreserved = sum(n for name, n in self._inflight.items() if functions[name].reserved is None)
        return unreserved < self._limit - reserved

    def _pool(self, spec: VersionSpec) -> VersionPool:
        key = (spec.function, spec.number)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = VersionPool(partial(self._spawn, spec), idle_timeout=self._idle_timeout)
            target = self._registry.function(spec.function).provisioned.get(spec.number, 0)
            if target:
                pool.set_provisioned(target)
        return pool

    async def _spawn(self, spec: VersionSpec) -> Worker:
        if self._reaper is None:  # the first worker starts the idle reaper
            self._reaper = asyncio.get_running_loop().create_task(self._reap_forever())
        log = self.work_dir / "logs" / f"{spec.function}.log"
        return await Worker.start(spec, self._registry.code_dir(spec), log)

    async def _reap_forever(self) -> None:
        """Stop idle on-demand workers about ``idle_timeout`` seconds after their last use."""
        interval = max(0.05, min(self._idle_timeout / 2, 30.0))
        while not self._closed:
            await asyncio.sleep(interval)
            for pool in list(self._pools.values()):
                pool.reap()

    def _check_open(self) -> None:
        if self._closed:
            raise PlatformError(
                "the local Lambda runtime is closed: it is shutting down",
                hint="start the local plane again with `pipeline local up`",
            )


def _aiohttp(answer: Answer) -> web.Response:
    """``answer`` as aiohttp's response (the runtime's own HTTP API is an aiohttp application)."""
    return web.Response(status=answer.status, reason=answer.reason, body=answer.body, headers=answer.headers)
