"""Values of the local Lambda runtime: a published version and an invocation's result.

Units: memory in MiB, timeouts in seconds, durations in milliseconds, times in epoch seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.core.errors import UsageError

ProvisionedStatus = Literal["READY", "IN_PROGRESS", "FAILED"]

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ALIAS_NAME = re.compile(r"^(?!\d+$)[A-Za-z0-9_-]{1,128}$")  # all digits would read as a version
HANDLER = re.compile(r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")
LATEST = "$LATEST"

# Invocation statuses, chosen to be what the HTTP front answers.
OK, THROTTLED, FUNCTION_ERROR, TIMED_OUT = 200, 429, 502, 504


@dataclass(frozen=True, slots=True)
class VersionSpec:
    """One published version: immutable code (a package, by sha256) plus its configuration."""

    function: str
    number: str
    sha256: str
    handler: str
    memory: int
    timeout: float
    environment: dict[str, str] = field(default_factory=dict)
    published_at: float = 0.0

    def same_config(self, other: VersionSpec) -> bool:
        """True when ``other`` has this version's code and configuration (a re-publish)."""
        return (self.sha256, self.handler, self.memory, self.timeout, self.environment) == (
            other.sha256,
            other.handler,
            other.memory,
            other.timeout,
            other.environment,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "version": self.number,
            "sha256": self.sha256,
            "handler": self.handler,
            "memory": self.memory,
            "timeout": self.timeout,
            "environment": dict(self.environment),
            "published_at": self.published_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionSpec:
        return cls(
            function=data["function"],
            number=data["version"],
            sha256=data["sha256"],
            handler=data["handler"],
            memory=int(data["memory"]),
            timeout=float(data["timeout"]),
            environment=dict(data.get("environment", {})),
            published_at=float(data.get("published_at", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """What one invocation did.

    ``status``: 200 the handler returned (``payload`` is its return value); 429 throttled by
    concurrency (the handler did not run); 502 the handler raised, its module failed to
    import, or its process died (``payload`` is the AWS-style error object, ``error`` a
    one-line summary); 504 it ran past the version's timeout and its environment was
    destroyed. ``duration_ms`` is the handler's run time as seen by the runtime (init
    excluded, as AWS's Duration); ``init_ms`` is the cold start's spawn + import time.
    """

    status: int
    payload: Any
    version: str
    cold_start: bool = False
    throttled: bool = False
    duration_ms: float = 0.0
    error: str = ""
    init_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "payload": self.payload,
            "version": self.version,
            "cold_start": self.cold_start,
            "throttled": self.throttled,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "init_ms": self.init_ms,
        }


def check_name(kind: str, value: str, pattern: re.Pattern[str], rule: str) -> str:
    """``value`` if it matches ``pattern``; otherwise a UsageError naming the rule."""
    if not pattern.fullmatch(value):
        raise UsageError(f"invalid {kind} {value!r}: {rule}", hint=f"rename the {kind}")
    return value


def check_version_config(handler: str, memory: int, timeout: float) -> None:
    """Raise UsageError unless the configuration is one AWS Lambda would accept."""
    check_name("handler", handler, HANDLER, "it must look like 'module.function'")
    if not 128 <= memory <= 10240:
        raise UsageError(f"invalid memory {memory} MiB: Lambda allows 128..10240", hint="set memory in range")
    if not 0 < timeout <= 900:
        raise UsageError(f"invalid timeout {timeout:g}s: Lambda allows (0, 900]", hint="set timeout in range")
