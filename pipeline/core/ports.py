"""The ports: small protocols the engine talks to. Platforms implement them.

Each protocol has at most five methods. Contracts that every adapter must keep are in the
docstrings: idempotency, units (seconds, integer percent), and what "ready" means.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pipeline.core.hops import Trace
from pipeline.core.model import Measurement, Release, ServiceRef, Slot, SlotHealth, StageResult, Weights
from pipeline.core.state import Action, DeploymentState, Signal


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds."""

    def sleep(self, seconds: float) -> None: ...


class Compute(Protocol):
    """Runs releases in the two slots of one service in one environment."""

    def provision(self, slot: Slot, release: Release) -> str | None:
        """Start (or update) ``slot`` to run ``release``. Idempotent; does not wait.

        May return the platform's reference for what now runs there (an ECS task definition
        revision ARN): the engine keeps it in the state, and a compute that implements
        ``Recalls`` gets it back in a later process (resume). None: nothing to keep."""

    def health(self, slot: Slot, release: Release) -> SlotHealth:
        """Report whether ``slot`` runs *this* release with every replica healthy."""

    def scale_down(self, slot: Slot) -> None:
        """Drain and stop ``slot``. Idempotent: a stopped slot stays stopped."""

    def endpoint(self, slot: Slot) -> str:
        """Base URL of the test route that reaches only ``slot``."""


@runtime_checkable
class Recalls(Protocol):
    """What a ``Compute`` may also implement to judge a resumed deployment by what it
    provisioned, not by content: the engine hands back, before it provisions or checks
    ``slot`` again, the reference ``provision`` returned for it (kept in the state)."""

    def recall(self, slot: Slot, release: Release, reference: str) -> None:
        """``reference`` is what ``provision(slot, release)`` returned in this deployment."""


class TrafficRouter(Protocol):
    """Splits a service's traffic between its two slots (ALB rule, Lambda alias, local router)."""

    def set_weights(self, weights: Weights) -> None:
        """Request the split. Idempotent. May take effect later; callers verify."""

    def get_weights(self) -> Weights | None:
        """Read the split back from the data plane; None when no route exists yet."""


class Metrics(Protocol):
    def measure(self, slot: Slot, since: float, until: float) -> Measurement:
        """Traffic facts for ``slot`` between two epoch times. Raises PlatformError on failure."""


class Traces(Protocol):
    """Finished request traces of one service in one environment (the platform's span store)."""

    def traces(self, since: float, until: float, slot: Slot | None = None) -> Sequence[Trace]:
        """Traces that reached the service between two epoch times (through its ``slot`` when
        given), each a list of spans; at most a few thousand, the newest. Raises PlatformError
        when the store cannot be read."""


class StageRunner(Protocol):
    """Runs a service's test or load stage against a slot's test route."""

    def run(self, stage: str, endpoint: str, timeout: float) -> StageResult:
        """``stage`` is "test" or "load"; must return within ``timeout`` seconds."""


class TrafficDriver(Protocol):
    """Sends synthetic requests through an environment's *main* route, where the router's
    weights split them between the two slots (evidence for analysis in quiet environments).
    """

    def drive(self, rate: float) -> None:
        """Send about ``rate`` requests per second from now until ``stop()``; returns at
        once. Idempotent: calling it again with another rate changes the rate."""

    def stop(self) -> None:
        """Stop sending and wait for requests in flight. Idempotent."""

    def sent(self, slot: Slot, since: float, until: float) -> SyntheticCount | None:
        """Synthetic requests that ``slot`` answered between two epoch times, counted the way
        ``Metrics`` counts (whole seconds); None when the driver cannot tell which slot
        answered (a router that does not name it)."""


@dataclass(frozen=True, slots=True)
class SyntheticCount:
    """Answers one slot gave to a TrafficDriver's requests, and the 5xx among them.

    The driver saw every one of them: a platform metric that misses some errors (Lambda
    counts function errors, not a handler's own 500 answer) cannot hide them."""

    requests: int
    errors: int = 0


class ImageRegistry(Protocol):
    def resolve(self, service: str, reference: str) -> Release:
        """Turn a tag, commit or digest into a release pinned by digest. NotFoundError if absent."""


@dataclass(frozen=True, slots=True)
class Record:
    """One history or audit line: who, what, which digest, when, why."""

    ts: float
    ref: ServiceRef
    deployment: str
    actor: str
    action: str
    phase: str = ""
    version: str = ""
    digest: str = ""
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    kind: str = "history"  # "history" (what the engine did) or "audit" (what a person asked for)


class StateStore(Protocol):
    """Durable deployment state, history and the signal inbox. Safe across processes."""

    def load(self, ref: ServiceRef) -> DeploymentState | None:
        """The latest deployment of ``ref``, or None."""

    def commit(
        self, state: DeploymentState | None, records: Sequence[Record], *, fence: Lease | None = None
    ) -> None:
        """Save ``state`` (unless None) and append ``records``, atomically.

        With ``fence``, the write happens only if that lease (same owner, same fencing
        token) still holds the lock, checked in the same transaction; otherwise nothing is
        written and ``LeaseLost`` names the holder. Audit records are write-once."""

    def history(self, ref: ServiceRef, limit: int = 200) -> list[Record]:
        """Records of ``ref``, oldest first (the last ``limit``)."""

    def send(self, ref: ServiceRef, signal: Signal) -> None:
        """Queue an operator signal (continue, abort, rollback) for the running engine."""

    def receive(self, ref: ServiceRef) -> list[Signal]:
        """Take (and remove) the queued signals of ``ref``, oldest first."""


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """Which process holds a lease, precisely enough to tell a dead holder from a live one.

    ``boot_id`` is the kernel's boot id, ``pid_ns`` the PID namespace (``pid:[4026531836]``),
    ``start_time`` the process start time in clock ticks since boot (``/proc/<pid>/stat``
    field 22). Empty strings / 0 where the platform cannot tell: such a holder is never
    judged dead, its lease only expires."""

    boot_id: str = ""
    pid_ns: str = ""
    pid: int = 0
    start_time: int = 0


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lock. ``expires_at`` is the holder's own estimate (its clock + ``ttl``), shown
    to people; takeover never compares it with another clock alone (see the lock managers).

    ``token`` is the fencing token: it increases on every acquire and takeover of the key,
    and every fenced commit checks it. ``version`` counts renewals of this token: a taker
    that sees it unchanged for ``ttl`` seconds of its own time knows the holder stopped."""

    key: str
    owner: str
    acquired_at: float
    expires_at: float
    token: int = 0
    version: int = 0
    ttl: float = 0.0
    holder: ProcessIdentity = field(default_factory=ProcessIdentity)


class LockManager(Protocol):
    """One lock per (service, environment), held by an owner for a lease."""

    def acquire(self, ref: ServiceRef, owner: str, ttl: float) -> Lease:
        """Take the lock (with a new, higher fencing token) or raise LockHeldError naming the
        holder. A lease whose holder process is provably gone is taken over at once; one that
        looks expired is taken over after seeing no renewal for its ttl on the taker's clock."""

    def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend a held lease (same token, next version). Raises LockHeldError if lost."""

    def release(self, lease: Lease) -> None:
        """Give the lock up. Idempotent."""

    def holder(self, ref: ServiceRef) -> Lease | None: ...


class EventSink(Protocol):
    """Progress output: the CLI renders these on stderr; tests collect them."""

    def emit(self, state: DeploymentState, notes: Sequence[str]) -> None: ...


@runtime_checkable
class WaitObserver(Protocol):
    """What an ``EventSink`` may also implement to show waits while they last.

    The engine calls ``waiting`` before each slice of a wait (a pause, a bake, a readiness
    or weight check not yet due, an analysis window) and before a test or load stage,
    which blocks. ``state.pending`` says what is awaited; ``now`` is the engine clock's
    epoch seconds. Must return quickly and never raise.
    """

    def waiting(self, state: DeploymentState, now: float) -> None: ...


class RunObserver(Protocol):
    """Watches one engine run as it goes: spans of a trace, notifications (``pipeline.observe``).

    ``run`` wraps the whole run (lock taken to lock released) and yields the run's trace id
    (32 hex digits, or "" when nothing records it), which the engine writes into the data of
    every history record of the run. ``purpose`` is what was asked for ("deploy", "promote
    from staging", "rollback", "resume", "continue", ...). ``action`` wraps one action run
    through the ports; a ``PipelineError`` escaping it is the action's failure. ``waiting``
    is called before each slice of a wait (``state.pending`` is awaited); ``changed`` after
    every state the engine saved. Times come from the engine's clock. Implementations must
    be quick and must never raise: a failure to observe never fails a deployment.
    """

    def run(self, state: DeploymentState, purpose: str) -> AbstractContextManager[str]: ...

    def action(self, state: DeploymentState, action: Action) -> AbstractContextManager[None]: ...

    def waiting(self, state: DeploymentState, now: float) -> None: ...

    def changed(self, before: DeploymentState, after: DeploymentState, notes: Sequence[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class Platform:
    """The ports one deployment of one service in one environment talks to.

    ``traffic`` is None where the platform cannot send synthetic traffic (no main-route
    URL); a deployment that asks for it then judges whatever real traffic there is.
    ``traces`` is None where the platform keeps no traces the toolkit can read (AWS for
    now): per-hop analysis checks are then Inconclusive, saying so."""

    compute: Compute
    router: TrafficRouter
    metrics: Metrics
    stages: StageRunner
    traffic: TrafficDriver | None = None
    traces: Traces | None = None
