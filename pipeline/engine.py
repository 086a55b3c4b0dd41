"""The one loop that runs every deployment, on every platform.

lock -> load state -> take signals -> run the pending action through the ports ->
``transition()`` -> save state and history atomically -> repeat.

Each ``tick()`` runs at most one action or one bounded slice of a wait, then persists, so
a process killed anywhere leaves a state from which ``run()`` continues (``--resume``).
Actions are idempotent, so the one that was running when the process died is simply run
again. Waits are slices of ``Timeouts.poll`` seconds, checking the signal inbox between
slices; time comes from the ``Clock`` port only.

The lock's lease is renewed by a ``Heartbeat`` thread while the run holds it (so a long
action never outlives it) and every commit is fenced by it: once another run has taken
the lease over, this run's next commit raises ``LeaseLost`` and saves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace

from pipeline.core.analysis import assess, has_hop_checks
from pipeline.core.errors import PipelineError, PlatformError, StateConflict, TransientPlatformError
from pipeline.core.evidence import traffic_rate
from pipeline.core.hops import profile
from pipeline.core.machine import transition
from pipeline.core.model import Measurement, Slot, SlotHealth
from pipeline.core.ports import (
    Clock,
    EventSink,
    Lease,
    LockManager,
    Platform,
    Recalls,
    Record,
    RunObserver,
    StateStore,
    TrafficDriver,
    WaitObserver,
)
from pipeline.core.state import (
    Action,
    AwaitReady,
    DeploymentState,
    Event,
    HealthObserved,
    Hold,
    Measure,
    Measured,
    Provision,
    Provisioned,
    RollbackRequested,
    RunStage,
    ScaledDown,
    ScaleDown,
    SetTraffic,
    Signal,
    StageFinished,
    Start,
    Tick,
    TrafficObserved,
    TrafficSet,
    VerifyTraffic,
    not_before,
)
from pipeline.heartbeat import Heartbeat

ENGINE_ACTOR = "pipeline"


@dataclass(frozen=True, slots=True)
class EngineSettings:
    lease_ttl: float = 30.0
    heartbeat: float | None = None  # seconds between lease renewals while running; None: ttl / 3
    max_action_retries: int = 5


class Engine:
    """Runs one deployment to a terminal phase through a ``Platform``'s ports."""

    def __init__(
        self,
        *,
        store: StateStore,
        locks: LockManager,
        clock: Clock,
        platform: Platform,
        sink: EventSink,
        owner: str,
        settings: EngineSettings = EngineSettings(),
        observer: RunObserver | None = None,
    ) -> None:
        self._store = store
        self._locks = locks
        self._clock = clock
        self._platform = platform
        self._sink = sink
        self._observer = sink if isinstance(sink, WaitObserver) else None
        self._runs = observer  # spans and notifications of this run (pipeline.observe)
        self._trace_id = ""
        self._owner = owner
        self._settings = settings
        self._heartbeat: Heartbeat | None = None
        self._failures = 0
        self._signals_at = float("-inf")
        self._driving = 0.0  # synthetic requests per second asked of the TrafficDriver

    # --- public -----------------------------------------------------------------

    def run(self, state: DeploymentState, audit: Sequence[Record] = ()) -> DeploymentState:
        """Hold the lock and tick until the deployment reaches a terminal phase.

        ``audit`` records are written once the lock is held. A new (pending) deployment is
        refused if, by then, another one of the same service and environment is unfinished.
        The lock is released on return and on ordinary exceptions; a process that dies
        leaves its lease to expire (or to be taken over at once where it provably died: same
        machine, same PID namespace). A run whose lease was taken over raises ``LeaseLost``.
        The run, its actions and its waits are reported to the ``RunObserver`` when there is one.
        """
        if self._runs is None:
            return self._run(state, audit)
        purpose = next((r.action for r in audit if r.kind == "audit"), "run")
        with self._runs.run(state, purpose) as trace_id:
            self._trace_id = trace_id
            audit = [replace(r, data={**r.data, **self._trace_data()}) for r in audit]
            return self._run(state, audit)

    def _run(self, state: DeploymentState, audit: Sequence[Record]) -> DeploymentState:
        ttl = self._settings.lease_ttl
        lease = self._locks.acquire(state.ref, self._owner, ttl)
        self._heartbeat = Heartbeat(self._locks, lease, ttl, interval=self._settings.heartbeat).start()
        try:
            if state.phase.value == "pending":
                self._check_not_superseded(state)
                state, audit = self._without_driver(state, audit)
            else:
                state = self._latest(state)  # another run may have moved it before we got the lock
            self._store.commit(state if state.phase.value == "pending" else None, audit, fence=self._fence())
            if state.phase.value == "pending":
                state = self.apply(state, Start(self._clock.now()))
            while not state.phase.terminal:
                self._drive(state)
                state = self.tick(state)
        except Exception:
            self._drive(None)
            self._release()
            raise
        except BaseException:
            # The process is going away (interrupt, exit, a simulated crash): stop renewing
            # and leave the lease to expire, as a process that died would.
            beat, self._heartbeat = self._heartbeat, None
            if beat is not None:
                beat.stop()
            raise
        self._drive(None)
        self._release()
        return state

    def apply(self, state: DeploymentState, event: Event, actor: str = "") -> DeploymentState:
        """Apply one event; persist the new state with its history notes if anything changed."""
        new, notes = transition(state, event)
        if new == state.evolve(updated_at=new.updated_at) and not notes:
            return state
        who = actor or getattr(event, "actor", "") or state.actor
        data = _record_data(state, new, event)
        name = type(event).__name__
        records = [self._record(new, who, name, note, event.now, data) for note in notes]
        if new.phase.terminal and not state.phase.terminal:
            records.append(self._outcome_record(new, event.now))
        self._store.commit(new, records, fence=self._fence())
        self._sink.emit(new, notes)
        if self._runs is not None:
            self._runs.changed(state, new, notes)
        return new

    def tick(self, state: DeploymentState) -> DeploymentState:
        """Take queued signals, then run the pending action (or one slice of its wait).

        The inbox is read before every wait and otherwise at most once per ``poll``
        seconds, so a burst of quick actions costs one read, not one per action.
        """
        now = self._clock.now()
        wake = _wake_time(state.pending) if state.pending is not None else None
        if (wake is not None and now < wake) or now - self._signals_at >= state.timeouts.poll:
            self._signals_at = now
            state = self._take_signals(state)
        action = state.pending
        if state.phase.terminal or action is None:
            return state
        wake = _wake_time(action)
        if wake is not None and now < wake:
            self._waiting(state)
            self._clock.sleep(min(state.timeouts.poll, wake - now))
            self._renew()
            return state
        if isinstance(action, RunStage):
            self._waiting(state, stage=True)  # a stage blocks until it ends: show it while it runs
        try:
            with self._runs.action(state, action) if self._runs is not None else nullcontext():
                event = self._execute(state, action)
        except PipelineError as exc:
            return self._action_failed(state, action, exc)
        self._failures = 0
        state = self.apply(state, event)
        if isinstance(action, Hold) and state.pending == action:
            self._waiting(state)
            self._clock.sleep(state.timeouts.poll)  # an open-ended hold: wait a slice
        self._renew()
        return state

    # --- internals ----------------------------------------------------------------

    def _latest(self, state: DeploymentState) -> DeploymentState:
        stored = self._store.load(state.ref)
        return stored if stored is not None and stored.id == state.id else state

    def _check_not_superseded(self, state: DeploymentState) -> None:
        stored = self._store.load(state.ref)
        if stored is not None and stored.id != state.id and not stored.phase.terminal:
            raise StateConflict(
                f"a deployment of {state.ref} is already {stored.phase.value}: "
                f"{stored.release.short} started by {stored.actor}",
                hint="resume it with `pipeline deploy --resume`, or stop it with `pipeline abort`",
            )

    def _take_signals(self, state: DeploymentState) -> DeploymentState:
        for signal in self._store.receive(state.ref):
            stale = signal.deployment and signal.deployment != state.id
            if stale or state.phase.terminal:
                why = f"meant for deployment {signal.deployment}" if stale else f"{state.id} already ended"
                self._reject(state, signal, why)
                continue
            try:
                state = self.apply(state, signal, actor=signal.actor)
            except StateConflict as exc:
                self._reject(state, signal, exc.message)
        return state

    def _reject(self, state: DeploymentState, signal: Signal, why: str) -> None:
        record = self._record(state, signal.actor, "rejected", f"{type(signal).__name__}: {why}", signal.now)
        self._store.commit(None, [record], fence=self._fence())
        self._sink.emit(state, [f"ignored {type(signal).__name__} from {signal.actor}: {why}"])

    def _execute(self, s: DeploymentState, action: Action) -> Event:
        p, now = self._platform, self._clock.now
        match action:
            case Provision(slot=slot):
                self._recall(s, slot)
                reference = p.compute.provision(slot, s.release)
                return Provisioned(now(), reference or "")
            case AwaitReady(slot=slot):
                self._recall(s, slot)
                health = p.compute.health(slot, s.release)
                return HealthObserved(now(), health.ready, _health_detail(health))
            case SetTraffic(weights=w):
                p.router.set_weights(w)
                return TrafficSet(now())
            case VerifyTraffic():
                return TrafficObserved(now(), p.router.get_weights())
            case Hold():
                return Tick(now())
            case RunStage(stage=stage, slot=slot):
                timeout = max(1.0, (s.deadline or now() + s.timeouts.stage) - now())
                result = p.stages.run(stage, p.compute.endpoint(slot), timeout)
                return StageFinished(now(), result)
            case Measure(slot=slot, since=since, until=until):
                return self._measure(s, slot, since, until)
            case ScaleDown(slot=slot):
                p.compute.scale_down(slot)
                return ScaledDown(now())
        raise AssertionError(action)  # pragma: no cover - exhaustive

    def _recall(self, s: DeploymentState, slot: Slot) -> None:
        """Hand the compute back what it provisioned in ``slot`` (a resumed run)."""
        compute, reference = self._platform.compute, s.ref_of(slot)
        if reference and isinstance(compute, Recalls):
            compute.recall(slot, s.release, reference)

    def _measure(self, s: DeploymentState, slot: Slot, since: float, until: float) -> Event:
        """Measure over ``[since, until)``; ``until`` 0 = now (the window of an exact source)."""
        until = until or self._clock.now()
        metrics = self._platform.metrics
        try:
            driver = self._platform.traffic if s.analysis.synthetic_rate > 0 else None
            canary = _with_synthetic(metrics.measure(slot, since, until), driver, slot, since, until)
            traces = self._platform.traces
            if has_hop_checks(s.analysis) and traces is not None:  # per-hop checks read the slot's traces
                canary = replace(canary, hops=profile(traces.traces(since, until, slot)).hops)
            baseline = None
            if s.stable is not None and s.weights is not None and s.weights.of(slot.other()) > 0:
                measured = metrics.measure(slot.other(), since, until)
                baseline = _with_synthetic(measured, driver, slot.other(), since, until)
        except PlatformError as exc:
            return Measured(self._clock.now(), None, None, exc.message)
        return Measured(self._clock.now(), canary, baseline)

    def _without_driver(
        self, state: DeploymentState, audit: Sequence[Record]
    ) -> tuple[DeploymentState, Sequence[Record]]:
        """A plan that asks for synthetic traffic on a platform that cannot send any judges
        real traffic only, and the history says so (rather than waiting for evidence)."""
        if state.analysis.synthetic_rate <= 0 or self._platform.traffic is not None:
            return state, audit
        note = (
            "no synthetic traffic: this platform has no main-route URL to send it to (on AWS set "
            "aws.url); analysis judges real traffic only"
        )
        state = state.evolve(analysis=replace(state.analysis, synthetic_rate=0.0))
        self._sink.emit(state, [note])
        return state, [*audit, self._record(state, ENGINE_ACTOR, "evidence", note, self._clock.now())]

    def _drive(self, state: DeploymentState | None) -> None:
        """Reconcile the TrafficDriver with what the deployment needs now (None: stop)."""
        driver = self._platform.traffic
        rate = traffic_rate(state) if state is not None and not state.phase.terminal else 0.0
        if driver is None or rate == self._driving:
            return
        if rate > 0:
            driver.drive(rate)
        else:
            driver.stop()
        self._driving = rate

    def _action_failed(self, state: DeploymentState, action: Action, exc: PipelineError) -> DeploymentState:
        """Retry a transient failure with backoff; otherwise (or when retries run out) roll
        back, or stop with the state saved if the deployment is already rolling back."""
        self._failures += 1
        name = type(action).__name__
        transient = isinstance(exc, TransientPlatformError)
        limit = self._settings.max_action_retries if transient else 0
        note = f"{name} failed ({self._failures}/{limit + 1}): {exc.message}"
        error = self._record(state, ENGINE_ACTOR, "error", note, self._clock.now())
        self._store.commit(state, [error], fence=self._fence())
        self._sink.emit(state, [note])
        if self._failures <= limit:
            self._clock.sleep(state.timeouts.poll * self._failures)
            self._renew()
            return state
        self._failures = 0
        if state.phase.value in ("rolling_back", "draining"):
            raise exc
        event = RollbackRequested(self._clock.now(), ENGINE_ACTOR, f"{name} failed: {exc.message}")
        return self.apply(state, event)

    def _waiting(self, state: DeploymentState, *, stage: bool = False) -> None:
        """Show a wait (or a stage that blocks) to the sink; a real wait (``stage`` False)
        is also a span of the run's trace."""
        if self._observer is not None:
            self._observer.waiting(state, self._clock.now())
        if self._runs is not None and not stage:
            self._runs.waiting(state, self._clock.now())

    def _trace_data(self) -> dict[str, object]:
        return {"trace_id": self._trace_id} if self._trace_id else {}

    def _fence(self) -> Lease | None:
        """The lease every commit is conditional on (None outside ``run``); LeaseLost if a
        renewal already found it lost: an action's result is then never saved."""
        if self._heartbeat is None:
            return None
        self._heartbeat.check()
        return self._heartbeat.lease

    def _renew(self) -> None:
        """Renew between actions when the engine's clock says half the lease is gone (the
        heartbeat renews on real time; a fake clock in tests moves faster than it)."""
        beat = self._heartbeat
        if beat is not None and self._clock.now() >= beat.lease.expires_at - self._settings.lease_ttl / 2:
            beat.renew()

    def _release(self) -> None:
        beat, self._heartbeat = self._heartbeat, None
        if beat is not None:
            beat.stop()
            self._locks.release(beat.lease)

    def _record(
        self, s: DeploymentState, actor: str, action: str, note: str, ts: float,
        data: dict[str, object] | None = None,
    ) -> Record:
        return Record(
            ts=ts,
            ref=s.ref,
            deployment=s.id,
            actor=actor,
            action=action,
            phase=s.phase.value,
            version=s.release.version,
            digest=s.release.digest,
            detail=note,
            data={**(data or {}), **self._trace_data()},
        )

    def _outcome_record(self, s: DeploymentState, ts: float) -> Record:
        """The one record per deployment that promote and rollback look for."""
        data: dict[str, object] = {"release": s.release.to_dict(), "slot": s.new_slot.value}
        if s.stable:
            data["stable"] = s.stable.to_dict()
        return self._record(s, s.actor, f"deployment.{s.phase.value}", s.reason, ts, data)


def _wake_time(action: Action) -> float | None:
    if isinstance(action, Hold):
        return action.until
    t = not_before(action)
    return t or None


def _health_detail(h: SlotHealth) -> str:
    base = f"{h.running}/{h.desired} running, {h.healthy} healthy"
    if not h.revision_matches:
        base += ", not yet on this release"
    return f"{base}; {h.detail}" if h.detail else base


class NullSink:
    """An EventSink that drops everything."""

    def emit(self, state: DeploymentState, notes: Sequence[str]) -> None:
        return None


def _with_synthetic(
    m: Measurement, driver: TrafficDriver | None, slot: Slot, since: float, until: float
) -> Measurement:
    """``m`` with the driver's count of the synthetic requests among them (when it counts)."""
    sent = driver.sent(slot, since, until) if driver is not None else None
    if sent is None:
        return m
    # The driver's answers are among the slot's: max() never counts an error twice, and the
    # platform's request count stays the total (a bucket-edge skew never inflates it).
    return replace(
        m,
        errors=min(m.requests, max(m.errors, sent.errors)),
        synthetic=sent.requests,
        synthetic_errors=sent.errors,
    )


def _record_data(old: DeploymentState, new: DeploymentState, event: Event) -> dict[str, object]:
    """Facts a report charts from the history: what an analysis judged and its verdict
    (``error`` when nothing was measured), and the weights once a new split is verified."""
    data: dict[str, object] = {}
    if isinstance(event, Measured):
        data = _evidence_data(event)
        canary = event.canary
        data["verdict"] = assess(new.analysis, canary, event.baseline).outcome.value if canary else "error"
    if new.weights is not None and new.weights != old.weights:
        data["weights"] = new.weights.to_dict()
    return data


def _evidence_data(event: Measured) -> dict[str, object]:
    """What an analysis judged, per slot, for the history (``pipeline history --json``)."""
    data: dict[str, object] = {}
    for name, m in (("canary", event.canary), ("baseline", event.baseline)):
        if m is not None:
            data[name] = {
                "requests": m.requests,
                "errors": m.errors,
                "p95_ms": m.p95_ms,
                **dict(m.extra),
                **({"p95_upper_bound": True} if m.p95_upper_bound else {}),
                **({"alarms": list(m.alarms)} if m.alarms else {}),
                **(
                    {"synthetic": m.synthetic, "synthetic_errors": m.synthetic_errors}
                    if m.synthetic is not None
                    else {}
                ),
            }
    return {"analysis": data} if data else {}
