"""Use cases on top of the engine: plan, deploy, resume, signal, rollback (promotion and
approvals are in ``pipeline.promotion``).

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

from pipeline.core.errors import LockHeldError, NotFoundError, StateConflict
from pipeline.core.machine import transition
from pipeline.core.model import Release, ServiceRef
from pipeline.core.plan import Strategy, new_deployment
from pipeline.core.plan import serving as plan_serving
from pipeline.core.ports import Clock, EventSink, LockManager, Platform, Record, StateStore
from pipeline.core.state import (
    AbortRequested,
    ContinueRequested,
    DeploymentState,
    RollbackRequested,
    Signal,
)
from pipeline.engine import Engine, EngineSettings

SUCCEEDED = "deployment.succeeded"


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

    def store_of(self, environment: str) -> StateStore:
        """The store holding ``environment``'s history (promotion reads the source's)."""
        return self.stores(environment) if self.stores else self.store

    def engine(self, ref: ServiceRef) -> Engine:
        return Engine(
            store=self.store,
            locks=self.locks,
            clock=self.clock,
            platform=self.platform_for(ref),
            sink=self.sink,
            owner=self.owner,
            settings=self.settings,
        )


def plan(
    ctx: Context, ref: ServiceRef, release: Release, strategy: Strategy, *, fast: bool = False
) -> DeploymentState:
    """The deployment ``deploy`` would run, without running it (``--dry-run``)."""
    previous = ctx.store.load(ref)
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
    (the operator's words) is added to the audit record."""
    state = plan(ctx, ref, release, strategy, fast=why == "rollback")
    detail = f"{why} {release.short}" + (f": {reason}" if reason else "")
    return ctx.engine(ref).run(state, [_audit(ctx, state, why, detail)])


def resume(ctx: Context, ref: ServiceRef) -> DeploymentState:
    """Continue the persisted deployment of ``ref`` after a crash."""
    state = current(ctx, ref)
    if state.phase.terminal:
        raise StateConflict(
            f"nothing to resume: the last deployment of {ref} ({state.release.short}) "
            f"ended {state.phase.value}",
            hint="start a new one with `pipeline deploy`",
        )
    return ctx.engine(ref).run(state, [_audit(ctx, state, "resume", f"resume at {state.phase.value}")])


def signal(ctx: Context, ref: ServiceRef, sig: Signal) -> DeploymentState | None:
    """Deliver an operator event; returns the final state if this process ran the engine.

    The event is checked against the state machine first, so an illegal request (continue
    when nothing is paused, abort after the end) fails here with a clear message.
    """
    state = current(ctx, ref)
    sig = replace(sig, deployment=state.id)  # never applied to a later deployment
    transition(state, sig)  # raises StateConflict for an illegal move; the result is discarded
    reason = "" if isinstance(sig, ContinueRequested) else sig.reason
    record = _audit(ctx, state, _SIGNAL_NAMES[type(sig)], reason)
    ctx.store.send(ref, sig)
    try:
        return ctx.engine(ref).run(state, [record])
    except LockHeldError:
        # A live engine holds the deployment: it takes the signal from the inbox at its next tick.
        ctx.store.commit(None, [record])
        return None


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
    return [
        Release.from_dict(r.data["release"])
        for r in ctx.store_of(ref.environment).history(ref, limit=100_000)
        if r.action == SUCCEEDED and "release" in r.data
    ]


def serving(state: DeploymentState | None) -> Release | None:
    """The release taking traffic after ``state``'s deployment ended (None if unknown)."""
    return plan_serving(state)[0]


def rollback(
    ctx: Context, ref: ServiceRef, strategy: Strategy, *, to: str = "", reason: str = ""
) -> DeploymentState | None:
    """Return ``ref`` to the last successfully deployed release (or the one named by ``to``);
    ``reason`` is recorded in the history.

    An unfinished deployment is rolled back by an event to its engine (the old slot is
    still serving or warm). After a finished one, the target release is redeployed fast:
    bring it up, 100% to it, verified, then the other slot scaled down.
    """
    state = current(ctx, ref)
    if not state.phase.terminal and not to:
        event = RollbackRequested(ctx.clock.now(), ctx.actor)
        return signal(ctx, ref, replace(event, reason=reason) if reason else event)
    live = serving(state)
    candidates = [r for r in successful_releases(ctx, ref) if live is None or r.digest != live.digest]
    if to:
        candidates = [r for r in candidates if to in (r.version, r.digest, r.commit)]
    if not candidates:
        raise NotFoundError(
            f"no release to roll {ref} back to"
            + (f": none matching {to!r} succeeded there" if to else ": no earlier successful deployment"),
            hint=f"`pipeline history {ref.service} --env {ref.environment}` lists what was deployed",
        )
    return deploy(ctx, ref, candidates[-1], strategy, why="rollback", reason=reason)



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
