"""Use cases on top of the engine: plan, deploy, resume, signal, rollback (promotion and
approvals are in ``pipeline.promotion``, the choice of a rollback target in ``pipeline.rollback``).

Every path that moves a release forward (deploy, resume, continue, rollback to an ended
release) first passes ``pipeline.requirements.admit`` with the context's ``requires``: an
environment's requirements hold on every path, or a recorded break-glass override applies.

Every operator command is an event for the same engine: the event goes to the store's
inbox, then this process tries to take the lock and run the engine itself (which applies
the event first). If a live engine holds the lock, that engine applies the event at its
next tick instead. A lock left by a dead process is taken over (expired lease, or a
holder process that no longer exists on this host). Each command also writes an audit record.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from pipeline import requirements
from pipeline.core.errors import LockHeldError, NotFoundError, PromotionRefused, StateConflict
from pipeline.core.machine import transition
from pipeline.core.model import Missing, Release, ServiceRef
from pipeline.core.plan import Strategy, new_deployment
from pipeline.core.plan import serving as plan_serving
from pipeline.core.ports import Clock, EventSink, LockManager, Platform, Record, RunObserver, StateStore
from pipeline.core.state import (
    AbortRequested,
    ContinueRequested,
    DeploymentState,
    RollbackRequested,
    Signal,
)
from pipeline.engine import Engine, EngineSettings
from pipeline.requirements import (
    Override,
    Requirements,
    admit,
    overridden,
    override_record,
)
from pipeline.requirements import successful_releases as _successful
from pipeline.rollback import ROLLBACK, RollbackPlan, plan_rollback

SUCCEEDED = requirements.SUCCEEDED


@dataclass(frozen=True)
class Context:
    """Everything a use case needs; the CLI's composition root builds one."""

    store: StateStore
    locks: LockManager
    clock: Clock
    sink: EventSink
    platform_for: Callable[[ServiceRef], Platform]
    actor: str
    owner: str
    settings: EngineSettings = EngineSettings()
    stores: Callable[[str], StateStore] | None = None  # other environments' stores, by name
    requires: Requirements = Requirements()  # the environment's requirements (App fills them)
    override: Override | None = None  # break-glass: --override-requirements --reason
    observer: RunObserver | None = None  # the run's trace and notifications (pipeline.observe)
    # raises when this process cannot run the rest of a stored deployment (AWS: credentials)
    resumable: Callable[[DeploymentState, str], None] | None = None

    def store_of(self, environment: str) -> StateStore:
        """The store holding ``environment``'s history (promotion reads the source's)."""
        return self.stores(environment) if self.stores else self.store

    def history(self, ref: ServiceRef) -> list[Record]:
        """All of ``ref``'s records, from its environment's store, oldest first."""
        return self.store_of(ref.environment).history(ref, limit=100_000)

    def engine(self, ref: ServiceRef) -> Engine:
        return Engine(
            store=self.store,
            locks=self.locks,
            clock=self.clock,
            platform=self.platform_for(ref),
            sink=self.sink,
            owner=self.owner,
            settings=self.settings,
            observer=self.observer,
        )


def plan(
    ctx: Context, ref: ServiceRef, release: Release, strategy: Strategy, *, fast: bool = False
) -> DeploymentState:
    """The deployment ``deploy`` would run, without running it (``--dry-run``).

    While another run holds the lock of ``ref`` the answer is LockHeldError naming it, the
    same answer that run's lock gives a little later: a deploy that loses a race is told
    "locked" (exit 4) whichever moment it loses at. StateConflict is for an unfinished
    deployment that no run holds (resume or stop it)."""
    previous = ctx.store.load(ref)
    if previous is not None and not previous.phase.terminal:
        holder = ctx.locks.holder(ref)
        if holder is not None:
            raise LockHeldError(holder.key, holder.owner, holder.acquired_at, holder.expires_at)
        previous = ctx.store.load(ref)  # it may have ended between the two reads
    if previous is not None and not previous.phase.terminal:
        raise StateConflict(
            f"a deployment of {ref} is already {previous.phase.value}: {previous.release.short} "
            f"started by {previous.actor}",
            hint=f"`pipeline deploy {ref.service} --env {ref.environment} --resume` continues it; "
            "`pipeline abort` or `pipeline rollback` stops it",
        )
    return new_deployment(
        deployment_id=f"d-{uuid.uuid4().hex[:10]}",
        ref=ref,
        release=release,
        previous=previous,
        strategy=strategy,
        actor=ctx.actor,
        now=ctx.clock.now(),
        fast=fast,
    )


def deploy(
    ctx: Context,
    ref: ServiceRef,
    release: Release,
    strategy: Strategy,
    *,
    why: str = "deploy",
    reason: str = "",
) -> DeploymentState:
    """Run a new deployment of ``release`` to its end; return the final state. ``reason``
    (the operator's words) is added to the audit record. Refused (``PromotionRefused``,
    nothing changed) unless the environment's requirements hold or ``ctx.override`` breaks
    the glass, which is recorded."""
    missing = admit_release(ctx, ref, release)
    state = plan(ctx, ref, release, strategy, fast=why == ROLLBACK)
    detail = f"{why} {release.short}" + (f": {reason}" if reason else "")
    return ctx.engine(ref).run(state, [_audit(ctx, state, why, detail), *_overrides(ctx, state, missing)])


def admit_release(ctx: Context, ref: ServiceRef, release: Release) -> tuple[Missing, ...]:
    """``requirements.admit`` for ``release`` in ``ref``'s environment: what is unmet (only
    with an allowed override), else ``PromotionRefused``. Commands call it before asking."""
    return admit(ctx.history, ref, release, ctx.requires, ctx.override)


def refusal_of(ctx: Context, ref: ServiceRef, release: Release) -> PromotionRefused | None:
    """What ``deploy`` would refuse ``release`` with (unmet requirements and no allowed
    override), or None; for ``--dry-run``, which changes nothing."""
    try:
        admit_release(ctx, ref, release)
    except PromotionRefused as refused:
        return refused
    return None


def _admit_running(ctx: Context, state: DeploymentState) -> list[Record]:
    """The gate for moving an unfinished deployment forward (resume, continue): it may have
    been started elsewhere, by a version that did not check. A deployment started with a
    recorded override needs none again."""
    if not ctx.requires.any or overridden(ctx.history(state.ref), state.id):
        return []
    return _overrides(ctx, state, admit_release(ctx, state.ref, state.release))


def _overrides(ctx: Context, state: DeploymentState, missing: tuple[Missing, ...]) -> list[Record]:
    if not missing or ctx.override is None:
        return []
    record = override_record(
        state.ref, state.id, state.release, missing, ctx.override, ts=ctx.clock.now(), actor=ctx.actor
    )
    return [record]


def resume(ctx: Context, ref: ServiceRef) -> DeploymentState:
    """Continue the persisted deployment of ``ref`` after a crash (its release must meet the
    environment's requirements, see ``_admit_running``)."""
    state = current(ctx, ref)
    if state.phase.terminal:
        raise StateConflict(
            f"nothing to resume: the last deployment of {ref} ({state.release.short}) "
            f"ended {state.phase.value}",
            hint="start a new one with `pipeline deploy`",
        )
    if ctx.resumable is not None:
        ctx.resumable(state, "deploy --resume")
    gate = _admit_running(ctx, state)
    return ctx.engine(ref).run(state, [_audit(ctx, state, "resume", f"resume at {state.phase.value}"), *gate])


def signal(ctx: Context, ref: ServiceRef, sig: Signal) -> DeploymentState | None:
    """Deliver an operator event; returns the final state if this process ran the engine.

    The event is checked against the state machine first, so an illegal request (continue
    when nothing is paused, abort after the end) fails here with a clear message.
    """
    state = current(ctx, ref)
    sig = replace(sig, deployment=state.id)  # never applied to a later deployment
    after, _ = transition(state, sig)  # raises StateConflict for an illegal move
    if isinstance(sig, ContinueRequested) and ctx.resumable is not None and not _held_elsewhere(ctx, ref):
        ctx.resumable(after, "continue")  # this process runs the rest: can it?
    gate = _admit_running(ctx, state) if isinstance(sig, ContinueRequested) else []
    reason = "" if isinstance(sig, ContinueRequested) else sig.reason
    records = [_audit(ctx, state, _SIGNAL_NAMES[type(sig)], reason), *gate]
    ctx.store.send(ref, sig)
    try:
        return ctx.engine(ref).run(state, records)
    except LockHeldError:
        # A live engine holds the deployment: it takes the signal from the inbox at its next tick.
        ctx.store.commit(None, records)
        return None


def _held_elsewhere(ctx: Context, ref: ServiceRef) -> bool:
    """Whether another run holds ``ref``'s lock and, by its own estimate, is alive: that run
    applies the signal and runs the rest, with its own credentials."""
    holder = ctx.locks.holder(ref)
    return holder is not None and holder.owner != ctx.owner and holder.expires_at > ctx.clock.now()


_SIGNAL_NAMES: dict[type, str] = {
    ContinueRequested: "continue",
    AbortRequested: "abort",
    RollbackRequested: "rollback",
}


def current(ctx: Context, ref: ServiceRef) -> DeploymentState:
    state = ctx.store.load(ref)
    if state is None:
        raise NotFoundError(
            f"no deployment of {ref.service} in {ref.environment} yet",
            hint=f"`pipeline deploy {ref.service} --env {ref.environment}` makes the first one",
        )
    return state


def successful_releases(ctx: Context, ref: ServiceRef) -> list[Release]:
    """Releases that completed a deployment in ``ref``'s environment, oldest first."""
    return _successful(ctx.history, ref)


def serving(state: DeploymentState | None) -> Release | None:
    """The release taking traffic after ``state``'s deployment ended (None if unknown)."""
    return plan_serving(state)[0]


def rollback_plan(ctx: Context, ref: ServiceRef, to: str = "") -> RollbackPlan:
    """What ``rollback`` would do: what serves, the target and why (``pipeline.rollback``)."""
    return plan_rollback(current(ctx, ref), ctx.history(ref), to)


def rollback(
    ctx: Context,
    ref: ServiceRef,
    strategy: Strategy,
    *,
    to: str = "",
    reason: str = "",
    planned: RollbackPlan | None = None,
) -> DeploymentState | None:
    """Return ``ref`` to the release ``rollback_plan`` chooses (``planned``, as shown to the
    operator, or a fresh plan); ``reason`` is recorded in the history.

    An unfinished deployment is rolled back by an event to its engine (the old slot is
    still serving or warm). After a finished one, the target release is redeployed fast:
    bring it up, 100% to it, verified, then the other slot scaled down; the target must
    meet the environment's requirements like any deployment.
    """
    chosen = planned or rollback_plan(ctx, ref, to)
    if chosen.signal:
        event = RollbackRequested(ctx.clock.now(), ctx.actor)
        return signal(ctx, ref, replace(event, reason=reason) if reason else event)
    return deploy(ctx, ref, chosen.target, strategy, why=ROLLBACK, reason=reason)


def abort(ctx: Context, ref: ServiceRef, reason: str = "aborted by operator") -> DeploymentState | None:
    return signal(ctx, ref, AbortRequested(ctx.clock.now(), ctx.actor, reason))


def resume_paused(ctx: Context, ref: ServiceRef, *, full: bool = False) -> DeploymentState | None:
    return signal(ctx, ref, ContinueRequested(ctx.clock.now(), ctx.actor, full))


def _audit(ctx: Context, state: DeploymentState, action: str, detail: str) -> Record:
    return Record(
        ts=ctx.clock.now(),
        ref=state.ref,
        deployment=state.id,
        actor=ctx.actor,
        action=action,
        phase=state.phase.value,
        version=state.release.version,
        digest=state.release.digest,
        detail=detail,
        kind="audit",
    )
