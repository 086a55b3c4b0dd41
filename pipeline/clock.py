"""The one wall clock: the ``Clock`` port on real time, for the CLI and every platform
(tests use ``pipeline.testing.FakeClock``)."""

from __future__ import annotations

import time


class SystemClock:
    """``Clock`` port on the wall clock: ``now()`` is ``time.time()`` (epoch seconds),
    ``sleep(seconds)`` blocks the calling thread (negative values sleep 0)."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))
