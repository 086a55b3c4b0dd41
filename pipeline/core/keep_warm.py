"""The keep-warm marker: the event a warm-up or keep-warm ping invokes a function with.

``{"pipeline-keep-warm": true}`` reaches the handler (so its environment is used and stays
warm); the handler answers it at once without doing any work (see ``docs/lambda-local.md``,
"Keep-warm"). Runtimes do not count these pings as requests in their metrics.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KEEP_WARM_EVENT", "KEEP_WARM_KEY", "is_keep_warm"]

KEEP_WARM_KEY = "pipeline-keep-warm"
KEEP_WARM_EVENT: dict[str, Any] = {KEEP_WARM_KEY: True}


def is_keep_warm(event: object) -> bool:
    """Whether ``event`` is a warm-up or keep-warm ping (a mapping whose marker is exactly true)."""
    return isinstance(event, dict) and event.get(KEEP_WARM_KEY) is True
