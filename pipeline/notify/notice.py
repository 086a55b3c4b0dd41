"""What one notification says: the event, the deployment, and where to read more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.core.state import DeploymentState

TITLES = {
    "started": "deployment started",
    "paused": "deployment paused: waiting for approval",
    "rolled_back": "deployment rolled back",
    "succeeded": "deployment succeeded",
    "promoted": "release promoted",
    "failed": "deployment failed",
}


@dataclass(frozen=True, slots=True)
class Notice:
    event: str  # a key of TITLES
    service: str
    environment: str
    deployment: str
    version: str
    digest: str
    actor: str
    phase: str
    reason: str = ""
    purpose: str = ""
    link: str = ""
    trace_id: str = ""

    @classmethod
    def of(cls, event: str, state: DeploymentState, *, purpose: str = "", link: str = "",
           trace_id: str = "") -> Notice:
        return cls(event, state.ref.service, state.ref.environment, state.id, state.release.version,
                   state.release.digest, state.actor, state.phase.value, state.reason, purpose, link,
                   trace_id)

    @property
    def subject(self) -> str:
        """One line: ``orders in production: deployment succeeded (3f2a1bc)``."""
        return f"{self.service} in {self.environment}: {TITLES[self.event]} ({self.version[:12]})"

    def lines(self) -> list[str]:
        found = [f"deployment {self.deployment} of {self.version} ({self.digest}) by {self.actor}"]
        if self.purpose:
            found.append(f"asked for: {self.purpose}")
        if self.reason and self.event not in {"succeeded", "promoted"}:
            found.append(f"why: {self.reason}")
        if self.trace_id:
            found.append(f"trace: {self.trace_id}")
        if self.link:
            found.append(f"report: {self.link}")
        return found

    def text(self) -> str:
        """Plain text (SNS, e-mail subscribers)."""
        return "\n".join([self.subject, *self.lines()])

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "service": self.service, "environment": self.environment,
                "deployment": self.deployment, "version": self.version, "digest": self.digest,
                "actor": self.actor, "phase": self.phase, "reason": self.reason, "purpose": self.purpose,
                "link": self.link, "trace_id": self.trace_id}


class Channel(Protocol):
    """Where notices go. ``send`` raises ``NotifyFailed`` (or a ``PipelineError``) when the
    notice could not be delivered; it returns within a few seconds."""

    name: str

    def send(self, notice: Notice) -> None: ...


class NotifyFailed(Exception):
    """A notice could not be delivered; the message says where and why (no secrets)."""
