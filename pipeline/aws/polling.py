"""Waiting on AWS with the injected clock: our own polls, never botocore waiters.

botocore's waiters sleep on the wall clock with their own fixed budgets (ECS
``services_stable`` polls 15 s x 40). ``wait_until`` polls a check every ``interval``
seconds of the ``Clock`` port for at most ``timeout`` seconds, so tests with a fake clock
never sleep and every wait has an explicit deadline.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, wait_fixed

from pipeline.core.errors import TransientPlatformError
from pipeline.core.ports import Clock

T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None], *, clock: Clock, timeout: float, interval: float, what: str
) -> T:
    """The first non-None result of ``check``, polled every ``interval`` s for ``timeout`` s.

    Raises TransientPlatformError naming ``what`` when the deadline passes; exceptions from
    ``check`` propagate at once.
    """
    attempts = max(1, math.ceil(timeout / interval)) + 1 if interval > 0 else 1
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_fixed(interval),
        sleep=clock.sleep,
        retry=retry_if_result(lambda result: result is None),
        reraise=True,
    )
    try:
        result = retrying(check)
    except RetryError as exc:
        raise _gave_up(what, timeout) from exc
    if result is None:  # not reached: tenacity raises RetryError when results stay None
        raise _gave_up(what, timeout)
    return result


def _gave_up(what: str, timeout: float) -> TransientPlatformError:
    return TransientPlatformError(
        f"gave up waiting: {what} did not happen within {timeout:g} s",
        hint="AWS may be slow right now; run the command again",
    )
