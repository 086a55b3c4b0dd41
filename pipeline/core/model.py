"""Value objects shared by the engine, the ports and the adapters.

Everything here is immutable and stdlib-only. Percentages are integers 0..100; times
are epoch seconds (floats) from the ``Clock`` port.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pipeline.core.hops import HopFigures

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_WEIGHTS_NOTE = re.compile(r"\bpipeline weights blue=(\d+) green=(\d+)\b")


class Slot(StrEnum):
    """One of the two places a release of a service can run."""

    BLUE = "blue"
    GREEN = "green"

    def other(self) -> Slot:
        return Slot.GREEN if self is Slot.BLUE else Slot.BLUE


@dataclass(frozen=True, slots=True)
class ServiceRef:
    """A service in one environment: the unit of locking, state and history."""

    service: str
    environment: str

    @property
    def key(self) -> str:
        return f"{self.service}@{self.environment}"

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class Release:
    """What gets deployed: a service's image pinned by digest, and where it came from.

    ``image`` is a reference that always carries the digest (``repo@sha256:...``);
    a mutable tag never identifies a release.
    """

    service: str
    version: str
    digest: str
    commit: str
    image: str = ""

    def __post_init__(self) -> None:
        if not _DIGEST.fullmatch(self.digest):
            raise ValueError(f"release digest must look like sha256:<64 hex>, got {self.digest!r}")

    @property
    def short(self) -> str:
        return f"{self.version} ({self.digest[7:19]})"

    def to_dict(self) -> dict[str, str]:
        return {
            "service": self.service,
            "version": self.version,
            "digest": self.digest,
            "commit": self.commit,
            "image": self.image,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Release:
        return cls(
            service=data["service"],
            version=data["version"],
            digest=data["digest"],
            commit=data["commit"],
            image=data.get("image", ""),
        )


@dataclass(frozen=True, slots=True)
class Missing:
    """One requirement a release does not meet in an environment.

    ``kind="passed"``: it has not completed a deployment in ``environment``;
    ``kind="approval"``: no member of ``organisation`` approved it (``verified``: only
    approvals verified through that source, e.g. "github", count).
    """

    kind: Literal["passed", "approval"]
    environment: str
    organisation: str = ""
    verified: str | None = None


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image reference pinned by digest: ``<repository>[:<tag>]@sha256:<hex>``."""

    repository: str
    tag: str | None
    digest: str

    @classmethod
    def parse(cls, text: str) -> ImageRef | None:
        """The parts of ``text``; None when it carries no digest (a tag, a commit, HEAD).
        A ``:`` followed by a ``/`` belongs to a registry port, not a tag."""
        if "@sha256:" not in text:
            return None
        name, digest = text.split("@", 1)
        repository, colon, tag = name.rpartition(":")
        if not colon or "/" in tag:
            repository, tag = name, ""
        return cls(repository=repository, tag=tag or None, digest=digest)

    def __str__(self) -> str:
        name = f"{self.repository}:{self.tag}" if self.tag else self.repository
        return f"{name}@{self.digest}"

    def release(self, service: str, commit: str = "") -> Release:
        """The release this reference names: the tag is its version (else the short digest)."""
        version = self.tag or self.digest[7:19]
        return Release(service=service, version=version, digest=self.digest, commit=commit, image=str(self))


@dataclass(frozen=True, slots=True)
class Weights:
    """Traffic split between the two slots, in integer percent, summing to 100."""

    blue: int
    green: int

    def __post_init__(self) -> None:
        if not (0 <= self.blue <= 100 and 0 <= self.green <= 100):
            raise ValueError(f"weights must be within 0..100, got {self.blue}/{self.green}")
        if self.blue + self.green != 100:
            raise ValueError(f"weights must sum to 100, got {self.blue}+{self.green}")

    @classmethod
    def all_to(cls, slot: Slot) -> Weights:
        return cls.split(slot, 100)

    @classmethod
    def split(cls, slot: Slot, percent: int) -> Weights:
        """``percent`` to ``slot``, the rest to the other slot."""
        if slot is Slot.GREEN:
            return cls(blue=100 - percent, green=percent)
        return cls(blue=percent, green=100 - percent)

    def of(self, slot: Slot) -> int:
        return self.green if slot is Slot.GREEN else self.blue

    def to_dict(self) -> dict[str, int]:
        return {"blue": self.blue, "green": self.green}

    def note(self) -> str:
        """The split as an alias router records it (``pipeline weights blue=.. green=..``).

        Both alias routers (AWS and local) keep the requested split in the alias
        description, which is the only place it survives when both slots run one version.
        """
        return f"pipeline weights blue={self.blue} green={self.green}"

    @classmethod
    def from_note(cls, text: str) -> Weights | None:
        """The split a ``note()`` recorded in ``text``; None when there is none or it is invalid."""
        match = _WEIGHTS_NOTE.search(text)
        if match is None:
            return None
        try:
            return cls(int(match[1]), int(match[2]))
        except ValueError:
            return None

    def __str__(self) -> str:
        return f"blue {self.blue}% / green {self.green}%"


@dataclass(frozen=True, slots=True)
class SlotHealth:
    """What the compute platform reports about one slot.

    ``ready`` is true only when the slot runs *this* release (``revision_matches``), with
    ``running == desired`` and every target passing its health check.
    """

    running: int
    desired: int
    healthy: int
    revision_matches: bool
    detail: str = ""

    @property
    def ready(self) -> bool:
        return (
            self.revision_matches
            and self.desired > 0
            and self.running == self.desired
            and self.healthy >= self.desired
        )


@dataclass(frozen=True, slots=True)
class Measurement:
    """Traffic facts for one slot over a window, from the Metrics port.

    ``p95_ms`` is None when the source has no latency data; ``p95_upper_bound`` says it is
    the window's maximum (a source without percentiles), so it can only overstate the p95.
    ``alarms`` names the platform's alarms in ALARM during the window (CloudWatch on AWS).
    ``synthetic`` counts the requests the deployment sent itself (None: nobody counted),
    ``synthetic_errors`` how many of those got a 5xx answer. ``extra`` carries figures
    for people and reports only (throttles, cold starts, ...): analysis never reads it.
    ``hops``: per-hop figures of the traces that reached the slot in the window, set by the
    engine for per-hop checks (``pipeline.core.hops``); None when nothing read any traces.
    """

    requests: int
    errors: int
    p95_ms: float | None = None
    extra: tuple[tuple[str, float], ...] = ()
    alarms: tuple[str, ...] = ()
    p95_upper_bound: bool = False
    synthetic: int | None = None
    synthetic_errors: int = 0
    hops: tuple[HopFigures, ...] | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class StageResult:
    """Outcome of a test or load stage run against the idle slot's test route."""

    passed: bool
    summary: str
    report: str = ""
