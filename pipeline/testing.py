"""In-memory fakes of every port, shipped with the package.

The engine tests, the crash tests and ``bench/engine.py`` use these; so can anyone who
builds on the engine. They keep the ports' contracts (idempotency, read-back, leases)
so that a test passing against them means something.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from pipeline.core.errors import LeaseLost, LockHeldError, NotFoundError, PlatformError
from pipeline.core.hops import Trace
from pipeline.core.model import Measurement, Release, ServiceRef, Slot, SlotHealth, StageResult, Weights
from pipeline.core.ports import Lease, Platform, Record, SyntheticCount
from pipeline.core.state import DeploymentState, Signal


class SimulatedCrash(BaseException):
    """Raised by the fakes to model a process killed right after an action took effect."""


class FakeClock:
    """A clock whose ``sleep`` advances time instantly."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start
        self.slept = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        self.slept += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class ActionLog:
    """Counts side-effecting calls; raises SimulatedCrash right after call number ``crash_after``."""

    calls: list[str] = field(default_factory=list)
    crash_after: int | None = None

    def note(self, what: str) -> None:
        self.calls.append(what)
        if self.crash_after is not None and len(self.calls) == self.crash_after:
            raise SimulatedCrash(what)


class FakeCompute:
    """Slots that become ready after ``ready_after`` health checks (never, when None)."""

    def __init__(self, log: ActionLog, ready_after: int | None = 0) -> None:
        self.log = log
        self.ready_after = ready_after
        self.slots: dict[Slot, Release | None] = {Slot.BLUE: None, Slot.GREEN: None}
        self.checks: dict[Slot, int] = defaultdict(int)
        self.fail_provision: Exception | None = None

    def provision(self, slot: Slot, release: Release) -> None:
        if self.fail_provision is not None:
            raise self.fail_provision
        if self.slots[slot] != release:
            self.checks[slot] = 0
        self.slots[slot] = release
        self.log.note(f"provision {slot} {release.version}")

    def health(self, slot: Slot, release: Release) -> SlotHealth:
        self.checks[slot] += 1
        on_release = self.slots[slot] == release
        ready = self.ready_after is not None and self.checks[slot] > self.ready_after
        n = 2 if on_release and ready else 0
        self.log.note(f"health {slot}")
        return SlotHealth(running=n, desired=2, healthy=n, revision_matches=on_release)

    def scale_down(self, slot: Slot) -> None:
        self.slots[slot] = None
        self.log.note(f"scale_down {slot}")

    def endpoint(self, slot: Slot) -> str:
        return f"http://test.invalid/{slot}"


class FakeRouter:
    """Weights that take effect after ``lag`` reads; ``stuck`` ignores every change."""

    def __init__(self, log: ActionLog, lag: int = 0) -> None:
        self.log = log
        self.lag = lag
        self.stuck = False
        self.actual: Weights | None = None
        self._pending: Weights | None = None
        self._reads_left = 0
        self.history: list[Weights] = []

    def set_weights(self, weights: Weights) -> None:
        if not self.stuck:
            self._pending, self._reads_left = weights, self.lag
            if self.lag == 0:
                self.actual = weights
                self.history.append(weights)
        self.log.note(f"set_weights {weights.blue}/{weights.green}")

    def get_weights(self) -> Weights | None:
        if self._pending is not None and self._pending != self.actual:
            if self._reads_left <= 0:
                self.actual = self._pending
                self.history.append(self._pending)
            self._reads_left -= 1
        self.log.note("get_weights")
        return self.actual


MetricsSource = Callable[[Slot, float, float], Measurement]


class FakeMetrics:
    """Returns ``per_slot[slot]`` (or a callable producing one); ``fail`` raises PlatformError.

    ``source``, when set, answers every window instead (``FakeTrafficDriver.metrics`` is one:
    a quiet environment where only synthetic requests arrive)."""

    def __init__(self, log: ActionLog) -> None:
        self.log = log
        self.per_slot: dict[Slot, Measurement | Callable[[], Measurement]] = {}
        self.source: MetricsSource | None = None
        self.fail: str | None = None
        self.calls = 0

    def measure(self, slot: Slot, since: float, until: float) -> Measurement:
        self.calls += 1
        self.log.note(f"measure {slot}")
        if self.fail:
            raise PlatformError(f"metrics unavailable: {self.fail}")
        if self.source is not None:
            return self.source(slot, since, until)
        value = self.per_slot.get(slot, Measurement(requests=1000, errors=0, p95_ms=50.0))
        return value() if callable(value) else value


class FakeTrafficDriver:
    """Synthetic traffic on a fake clock: ``rate`` requests per second while driving, split
    by the router's current weights. ``metrics(error_rate)`` turns it into a Metrics source
    of a quiet environment (no other traffic; ``error_rate[slot]`` of it fails)."""

    def __init__(self, clock: FakeClock, router: FakeRouter) -> None:
        self.clock = clock
        self.router = router
        self.segments: list[tuple[float, float | None, float]] = []  # (start, end, rate)
        self.error_rate: dict[Slot, float] = {}

    @property
    def rate(self) -> float:
        return self.segments[-1][2] if self.segments and self.segments[-1][1] is None else 0.0

    def drive(self, rate: float) -> None:
        if rate != self.rate:
            self.stop()
            self.segments.append((self.clock.now(), None, rate))

    def stop(self) -> None:
        if self.segments and self.segments[-1][1] is None:
            start, _, rate = self.segments[-1]
            self.segments[-1] = (start, self.clock.now(), rate)

    def sent(self, slot: Slot, since: float, until: float) -> SyntheticCount | None:
        weights = self.router.actual
        share = weights.of(slot) / 100 if weights is not None else 0.0
        total = 0.0
        for start, end, rate in self.segments:
            overlap = min(until, self.clock.now() if end is None else end) - max(since, start)
            total += rate * max(0.0, overlap)
        n = int(total * share)
        return SyntheticCount(n, int(n * self.error_rate.get(slot, 0.0)))

    def metrics(
        self, error_rate: dict[Slot, float] | None = None, *, see_errors: bool = True
    ) -> MetricsSource:
        """A quiet environment's metrics: only these requests; ``error_rate[slot]`` of them
        fail. ``see_errors=False``: the metric misses them (a handler's own 500 on Lambda)."""
        self.error_rate = dict(error_rate or {})

        def measure(slot: Slot, since: float, until: float) -> Measurement:
            sent = self.sent(slot, since, until)
            n, errors = (sent.requests, sent.errors) if sent is not None else (0, 0)
            return Measurement(n, errors if see_errors else 0, p95_ms=20.0 if n else None)

        return measure


class FakeTraces:
    """Answers ``per_slot[slot]`` (a list of traces, each a list of spans) for every window;
    ``asked`` records each (since, until, slot)."""

    def __init__(self) -> None:
        self.per_slot: dict[Slot, list[Trace]] = {}
        self.asked: list[tuple[float, float, Slot | None]] = []

    def traces(self, since: float, until: float, slot: Slot | None = None) -> list[Trace]:
        self.asked.append((since, until, slot))
        if slot is None:
            return [t for traces in self.per_slot.values() for t in traces]
        return list(self.per_slot.get(slot, []))


class FakeStages:
    def __init__(self, log: ActionLog) -> None:
        self.log = log
        self.results: dict[str, StageResult] = {}
        self.runs: list[tuple[str, str]] = []

    def run(self, stage: str, endpoint: str, timeout: float) -> StageResult:
        self.runs.append((stage, endpoint))
        self.log.note(f"stage {stage}")
        return self.results.get(stage, StageResult(True, f"{stage} ok"))


@dataclass
class FakePlatform:
    log: ActionLog
    compute: FakeCompute
    router: FakeRouter
    metrics: FakeMetrics
    stages: FakeStages
    traffic: FakeTrafficDriver | None = None
    traces: FakeTraces | None = None

    @classmethod
    def create(
        cls, *, ready_after: int | None = 0, lag: int = 0, clock: FakeClock | None = None
    ) -> FakePlatform:
        """With a ``clock``, the platform can also drive synthetic traffic (``traffic``)."""
        log = ActionLog()
        router = FakeRouter(log, lag)
        traffic = FakeTrafficDriver(clock, router) if clock is not None else None
        return cls(log, FakeCompute(log, ready_after), router, FakeMetrics(log), FakeStages(log), traffic)

    def ports(self) -> Platform:
        return Platform(compute=self.compute, router=self.router, metrics=self.metrics, stages=self.stages,
                        traffic=self.traffic, traces=self.traces)


class InMemoryStore:
    """StateStore + LockManager in memory, thread-safe. Shares the StateStore contract."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.states: dict[ServiceRef, DeploymentState] = {}
        self.records: list[Record] = []
        self.inbox: dict[ServiceRef, list[Signal]] = defaultdict(list)
        self.leases: dict[str, Lease] = {}
        self.tokens: dict[str, int] = {}

    # StateStore
    def load(self, ref: ServiceRef) -> DeploymentState | None:
        with self._lock:
            state = self.states.get(ref)
            return DeploymentState.from_json(state.to_json()) if state else None

    def commit(
        self, state: DeploymentState | None, records: Sequence[Record], *, fence: Lease | None = None
    ) -> None:
        with self._lock:
            held = self.leases.get(fence.key) if fence is not None else None
            if fence is not None and (held is None or (held.owner, held.token) != (fence.owner, fence.token)):
                raise LeaseLost(fence.key, held.owner if held else "nobody")
            if state is not None:
                self.states[state.ref] = DeploymentState.from_json(state.to_json())
            self.records.extend(records)

    def history(self, ref: ServiceRef, limit: int = 200) -> list[Record]:
        with self._lock:
            return [r for r in self.records if r.ref == ref][-limit:]

    def send(self, ref: ServiceRef, signal: Signal) -> None:
        with self._lock:
            self.inbox[ref].append(signal)

    def receive(self, ref: ServiceRef) -> list[Signal]:
        with self._lock:
            taken, self.inbox[ref] = self.inbox[ref], []
            return taken

    # LockManager
    def acquire(self, ref: ServiceRef, owner: str, ttl: float) -> Lease:
        with self._lock:
            now = self.clock.now()
            held = self.leases.get(ref.key)
            if held and held.owner != owner and held.expires_at > now:
                raise LockHeldError(ref.key, held.owner, held.acquired_at, held.expires_at)
            since = held.acquired_at if held and held.owner == owner else now
            self.tokens[ref.key] = self.tokens.get(ref.key, 0) + 1  # fencing token: never reused
            lease = Lease(ref.key, owner, since, now + ttl, self.tokens[ref.key], 0, ttl)
            self.leases[ref.key] = lease
            return lease

    def renew(self, lease: Lease, ttl: float) -> Lease:
        with self._lock:
            held = self.leases.get(lease.key)
            if held is None or (held.owner, held.token) != (lease.owner, lease.token):
                holder = held.owner if held else "nobody"
                raise LockHeldError(lease.key, holder, held.acquired_at if held else 0, 0)
            renewed = replace(held, expires_at=self.clock.now() + ttl, version=held.version + 1, ttl=ttl)
            self.leases[lease.key] = renewed
            return renewed

    def release(self, lease: Lease) -> None:
        with self._lock:
            held = self.leases.get(lease.key)
            if held and (held.owner, held.token) == (lease.owner, lease.token):
                del self.leases[lease.key]

    def holder(self, ref: ServiceRef) -> Lease | None:
        with self._lock:
            held = self.leases.get(ref.key)
            return held if held and held.expires_at > self.clock.now() else None


class CollectingSink:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.phases: list[str] = []

    def emit(self, state: DeploymentState, notes: Sequence[str]) -> None:
        self.phases.append(state.phase.value)
        self.notes.extend(notes)


class FakeRegistry:
    """Images by service and tag/commit; digests are sha256 of a made-up manifest."""

    def __init__(self) -> None:
        self.images: dict[tuple[str, str], Release] = {}

    def add(self, service: str, version: str, commit: str = "") -> Release:
        digest = "sha256:" + hashlib.sha256(f"{service}:{version}".encode()).hexdigest()
        release = Release(service, version, digest, commit or hashlib.sha1(version.encode()).hexdigest())
        for key in (version, release.commit, digest):
            self.images[(service, key)] = release
        return release

    def resolve(self, service: str, reference: str) -> Release:
        try:
            return self.images[(service, reference)]
        except KeyError as exc:
            raise NotFoundError(f"no image of {service} matches {reference!r}") from exc


def release(version: str, service: str = "orders") -> Release:
    """A release with a deterministic digest, for tests."""
    return FakeRegistry().add(service, version)
