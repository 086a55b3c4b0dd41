"""API keys of a service's edge: values and the ``ApiKeys`` port.

A key is issued once: ``create`` returns the secret in an ``IssuedKey`` and nothing can
show it again; platforms keep only what checks it (the local plane a salted hash, API
Gateway its own store). ``hint`` is the first four characters of the secret, enough for
a person to tell keys apart in ``pipeline keys list``.

Errors: ``NotFoundError`` for an unknown service or key name, ``UsageError`` for a name
already taken or a plan the service does not define, ``PlatformError`` for the platform.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

__all__ = ["KEY_NAME_PATTERN", "ApiKey", "ApiKeys", "EdgeCounts", "IssuedKey", "hint_of"]

KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
HINT_LENGTH = 4


def hint_of(secret: str) -> str:
    """What may be shown of a secret: its first four characters."""
    return secret[:HINT_LENGTH]


def valid_key_name(name: str) -> bool:
    return re.fullmatch(KEY_NAME_PATTERN, name) is not None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: never its secret. ``created``/``revoked`` are epoch seconds."""

    name: str
    id: str
    plan: str | None
    created: float
    revoked: float | None
    hint: str

    @property
    def active(self) -> bool:
        return self.revoked is None

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "id": self.id, "plan": self.plan, "created": self.created,
                "revoked": self.revoked, "hint": self.hint}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ApiKey:
        plan, revoked = data.get("plan"), data.get("revoked")
        return cls(
            name=str(data["name"]), id=str(data["id"]), plan=str(plan) if plan is not None else None,
            created=float(str(data["created"])), revoked=float(str(revoked)) if revoked is not None else None,
            hint=str(data["hint"]),
        )


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just created, with its secret: shown once, then only ``key.hint`` remains."""

    key: ApiKey
    secret: str


@dataclass(frozen=True, slots=True)
class EdgeCounts:
    """What the edge did with one key's requests (``key`` "" for requests without one)."""

    key: str
    hits: int = 0
    misses: int = 0
    throttled: int = 0
    denied: int = 0

    @property
    def hit_ratio(self) -> float | None:
        """Cache hits among cacheable lookups; None before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None


class ApiKeys(Protocol):
    """Key management of a service's edge in one environment (idempotent reads, one-shot create)."""

    def create(self, service: str, name: str, plan: str | None) -> IssuedKey:
        """A new active key ``name`` on ``plan`` (the service's default plan when None)."""
        ...

    def list(self, service: str) -> list[ApiKey]:
        """Every key of ``service``, revoked ones included, oldest first."""
        ...

    def revoke(self, service: str, name: str) -> ApiKey:
        """Refuse ``name`` from now on; revoking a revoked key returns it unchanged."""
        ...
