"""Run a ``LambdaRuntime`` and its control API on 127.0.0.1 in a background thread.

For synchronous callers: tests, benchmarks, and anyone who wants the runtime without the
whole local plane. The plane itself mounts ``lambda_app`` in its own application instead.

::

    with LambdaServer(tmp_path) as server:
        url = server.base_url                      # http://127.0.0.1:PORT/lambda/
        version = server.call(lambda rt: rt.publish_version(...))
        result = server.run(server.runtime.invoke("orders", "live", {}))
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from pipeline.core.errors import PlatformError
from pipeline.local.lambda_.control_api import MAX_REQUEST, lambda_app
from pipeline.local.lambda_.runtime import LambdaRuntime

T = TypeVar("T")


class LambdaServer:
    """A runtime plus an HTTP server for its control API (mounted at ``/lambda/``).

    ``port`` 0 picks a free port; ``runtime_options`` go to ``LambdaRuntime``. ``stop()``
    closes the runtime (every worker process) and the server; it is idempotent.
    """

    def __init__(
        self, work_dir: Path, *, host: str = "127.0.0.1", port: int = 0, **runtime_options: Any
    ) -> None:
        self._work_dir = work_dir
        self._host = host
        self._port = port
        self._options = runtime_options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lambda-server", daemon=True)
        self._runner: web.AppRunner | None = None
        self._runtime: LambdaRuntime | None = None
        self.port = 0

    @property
    def runtime(self) -> LambdaRuntime:
        if self._runtime is None:
            raise PlatformError("the Lambda server is not started", hint="call start() first")
        return self._runtime

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/lambda/"

    def start(self) -> LambdaServer:
        self._thread.start()
        self.run(self._start())
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        """Run ``coro`` on the server's loop and return its result (from any other thread)."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def call(self, fn: Callable[[LambdaRuntime], T], timeout: float = 120.0) -> T:
        """Call ``fn(runtime)`` on the server's loop (for the runtime's synchronous methods)."""

        async def _call() -> T:
            return fn(self.runtime)

        return self.run(_call(), timeout)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self.run(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def __enter__(self) -> LambdaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start(self) -> None:
        self._runtime = LambdaRuntime(self._work_dir, **self._options)
        root = web.Application(client_max_size=MAX_REQUEST)
        root.add_subapp("/lambda/", lambda_app(self._runtime))
        self._runner = web.AppRunner(root, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the port chosen when asked for 0
        await self._runtime.start()

    async def _stop(self) -> None:
        if self._runtime is not None:
            await self._runtime.close()
        if self._runner is not None:
            await self._runner.cleanup()
