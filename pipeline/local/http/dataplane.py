"""The data plane: every router listener on its own thread and event loop.

The plane's control API runs on the process's main event loop; the routers run here, on a
second loop in a second thread, with their own keep-alive connections to the replicas
(``UpstreamPool``) and one ``ConnectionGate`` over all listeners. However hard a router port is
hit (thousands of connections, slow clients, large bodies), the control API's loop is not
the one doing the work, so it keeps answering; and a slow control request never delays
traffic.

What the two loops share is plain data read under the GIL: route tables and pickers (replaced
whole by the control loop), replica sets (read by the router), and the per-slot counters
(which take a lock). Coroutines cross loops only through ``DataPlane.call`` (control loop →
data loop) and ``run_on`` (data loop → another loop), never by awaiting a foreign future.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from pipeline.local.http.limits import ConnectionGate, RouterLimits
from pipeline.local.http.upstream import UpstreamPool

T = TypeVar("T")
_CLOSE_TIMEOUT = 10.0
GC_THRESHOLDS = (20_000, 50, 100)
"""The plane's collector thresholds (Python's defaults: 700, 10, 10); see ``tune_gc``."""


class DataPlane:
    """A thread running an event loop for the routers; ``start``/``close`` from another loop."""

    def __init__(self, limits: RouterLimits) -> None:
        self.limits = limits
        self.loop = asyncio.new_event_loop()
        self.gate = ConnectionGate(limits, self.loop)
        self.pool = UpstreamPool()  # keep-alive connections to the replicas, used on the data loop
        self._thread = threading.Thread(target=self._run, name="pipeline-data-plane", daemon=True)

    async def start(self) -> None:
        """Start the thread (after ``tune_gc``: the plane's process serves traffic from now on)."""
        tune_gc()
        self._thread.start()

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the data loop and await its result from the calling loop."""
        return await run_on(self.loop, coro)

    async def close(self) -> None:
        """Close the upstream connections, stop the loop and join the thread. Idempotent."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(TimeoutError):  # a wedged data loop must not keep the plane alive
            await asyncio.wait_for(self.call(self._shutdown()), _CLOSE_TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, _CLOSE_TIMEOUT)
        if not self._thread.is_alive():
            self.loop.close()

    async def _shutdown(self) -> None:
        self.pool.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # cancel what is left (handlers of connections that never finished)
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def tune_gc() -> None:
    """Tune the process's cyclic garbage collector for proxying.

    Every proxied request allocates a few hundred objects (request, response, headers, span),
    so with Python's default thresholds the collector runs every few requests, and every so
    often walks every object of the process (the plane holds hundreds of thousands: a pause of
    tens of milliseconds, straight into the router's p99). The objects alive now (modules, the
    SDKs, the plane's state) are frozen, never scanned again, and young collections run every
    ``GC_THRESHOLDS[0]`` allocations. Cycles are still collected, later."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def run_on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on ``loop`` (another thread's) and await it from the running loop; when
    ``loop`` is the running loop, just await it."""
    if loop is asyncio.get_running_loop():
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))
