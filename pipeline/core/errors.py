"""One rooted error hierarchy for the whole toolkit.

Every error carries an exit code and a message of the form
``what happened: why`` plus a ``hint`` saying what to do. Adapters translate their
library's exceptions into these (always ``raise ... from exc``) so the CLI can render
any failure without a traceback.

::

    PipelineError (1)
    ├── ConfigError (2)              bad pipeline.yaml / service.yaml, with file:line
    ├── UsageError (2)               bad command-line input
    ├── NotFoundError (3)            unknown service, environment, release, deployment
    ├── LockHeldError (4)            another run holds the (service, environment) lock
    ├── LeaseLost (4)                this run's lease was taken over: its writes are refused
    ├── PromotionRefused (5)         an environment's requirements are not met
    ├── DeploymentFailed (6)         the deployment ended rolled back, aborted or failed
    ├── PlatformError (7)            compute / router / registry / store failures
    │   └── TransientPlatformError   worth retrying
    ├── StateConflict (8)            the request does not fit the deployment's phase
    └── Cancelled (130)              the user declined a prompt
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.core.model import Missing


class PipelineError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(PipelineError):
    """All problems found in the configuration, reported at once."""

    exit_code = 2

    def __init__(self, problems: list[str], *, hint: str = "") -> None:
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"configuration is invalid: {len(problems)} {noun}\n" + "\n".join(problems),
            hint=hint or "fix the lines above, then run `pipeline validate` again",
        )
        self.problems = problems


class UsageError(PipelineError):
    exit_code = 2


class NotFoundError(PipelineError):
    exit_code = 3


class LockHeldError(PipelineError):
    exit_code = 4

    def __init__(self, key: str, holder: str, since: float, expires: float) -> None:
        super().__init__(
            f"{key} is locked: held by {holder} since {_iso(since)} (lease until {_iso(expires)})",
            hint="wait for that run to finish, or `pipeline abort` it; "
            "a lease that is not renewed expires and can then be taken over",
        )
        self.key = key
        self.holder = holder
        self.since = since
        self.expires = expires


class LeaseLost(PipelineError):
    """This run no longer holds the lock it worked under; nothing more of it is saved."""

    exit_code = 4

    def __init__(self, key: str, holder: str, *, why: str = "") -> None:
        super().__init__(
            f"lost the lock of {key}: now held by {holder}"
            + (f" ({why})" if why else "")
            + "; this run's result was not saved",
            hint="the run holding the lock carries on; see `pipeline status` and `pipeline history`",
        )
        self.key = key
        self.holder = holder


class PromotionRefused(PipelineError):
    """``missing``: the unmet requirements as data, when the refusal is about requirements."""

    exit_code = 5

    def __init__(self, message: str, *, hint: str = "", missing: tuple[Missing, ...] = ()) -> None:
        super().__init__(message, hint=hint)
        self.missing = missing


class DeploymentFailed(PipelineError):
    exit_code = 6


class PlatformError(PipelineError):
    exit_code = 7


class TransientPlatformError(PlatformError):
    """A platform failure that may succeed when retried (throttling, timeouts, 5xx)."""


class StateConflict(PipelineError):
    """The request does not fit the deployment's current phase (e.g. continue when not paused)."""

    exit_code = 8


class Cancelled(PipelineError):
    exit_code = 130


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
