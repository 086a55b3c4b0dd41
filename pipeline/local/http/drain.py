"""Write flow control of one connection, shared by the router's two sides.

asyncio calls a protocol's ``pause_writing`` when a transport's write buffer passes its high
mark and ``resume_writing`` when it has drained; ``Drain`` turns that into something a
writer can await (``wait``), and fails the wait when the connection is lost. The router's
listener (client side) and its upstream connections (replica side) each hold one.
"""

from __future__ import annotations

import asyncio


class Drain:
    """Pending until the transport resumes writing, or failed when the connection ended."""

    __slots__ = ("_future",)

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None

    def pause(self) -> None:
        self._future = asyncio.get_running_loop().create_future()

    def resume(self) -> None:
        if self._future is not None and not self._future.done():
            self._future.set_result(None)
        self._future = None

    def fail(self, exc: Exception) -> None:
        """The connection is gone: a writer waiting (now or later) gets ``exc``."""
        if self._future is not None and not self._future.done():
            self._future.set_exception(exc)
            self._future.exception()  # retrieved: nobody may be waiting

    async def wait(self) -> None:
        """Return once writing may go on (at once unless paused)."""
        if self._future is not None:
            await self._future
