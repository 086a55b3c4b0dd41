"""Use cases on top of the engine: deploy, resume, signal, rollback, approve, promote.

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

from pipeline.core.errors import LockHeldError, NotFoundError, PromotionRefused, StateConflict
from pipeline.core.machine import transition
from pipeline.core.model import Missing, Release, ServiceRef
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


# --- promotion --------------------------------------------------------------------


@dataclass(frozen=True)
class Requirements:
    """What an environment demands of a release before it may be deployed there."""

    passed: tuple[str, ...] = ()
    approval: str | None = None  # organisation whose member must approve
    approvers: frozenset[str] | None = None  # members of that organisation; None = anyone
    verified: str | None = None  # "github": only approvals verified through GitHub count


def approve(ctx: Context, ref: ServiceRef, release: Release, organisation: str) -> None:
    """Record that ``ctx.actor`` approved ``release`` for ``ref``'s environment."""
    record = Record(
        ts=ctx.clock.now(),
        ref=ref,
        deployment="",
        actor=ctx.actor,
        action="approve",
        version=release.version,
        digest=release.digest,
        detail=f"approved {release.short} for {ref.environment} on behalf of {organisation}",
        data={"release": release.to_dict(), "organisation": organisation},
        kind="audit",
    )
    ctx.store.commit(None, [record])


def approve_verified(
    ctx: Context,
    ref: ServiceRef,
    release: Release,
    organisation: str,
    *,
    reviewer: str,
    url: str,
    source: str,
) -> bool:
    """Record an approval whose reviewer ``source`` (e.g. "github") verified; the record binds
    to ``release.digest`` alone. Idempotent: False when the same approval is already recorded."""
    wanted = (reviewer, release.digest, url)
    for r in ctx.store.history(ref, limit=100_000):
        if r.action == "approve" and (r.actor, r.digest, r.data.get("url")) == wanted:
            return False
    data = {"verified": source, "reviewer": reviewer, "url": url, "digest": release.digest}
    record = Record(
        ts=ctx.clock.now(),
        ref=ref,
        deployment="",
        actor=reviewer,
        action="approve",
        version=release.version,
        digest=release.digest,
        detail=f"approved {release.short} for {ref.environment} on behalf of {organisation} ({url})",
        data={**data, "release": release.to_dict(), "organisation": organisation},
        kind="audit",
    )
    ctx.store.commit(None, [record])
    return True


def promotable(ctx: Context, service: str, source: str, digest: str = "") -> Release:
    """The release serving in ``source``, which must have completed a deployment there; or,
    with ``digest``, exactly that release, which must have completed a deployment there
    (even if ``source`` serves another one now)."""
    ref = ServiceRef(service, source)
    if digest:
        return _passed(ctx, ref, digest)
    live = serving(ctx.store_of(source).load(ref))
    passed = {r.digest for r in successful_releases(ctx, ref)}
    if live is None or live.digest not in passed:
        raise PromotionRefused(
            f"cannot promote {service} from {source}: {source} has no successful deployment of it",
            hint=f"deploy it to {source} first: `pipeline deploy {service} --env {source}`",
        )
    return live


def _passed(ctx: Context, ref: ServiceRef, digest: str) -> Release:
    wanted = digest.rsplit("@", 1)[-1]  # a digest, or an image reference with one
    for release in reversed(successful_releases(ctx, ref)):
        if release.digest == wanted:
            return release
    raise PromotionRefused(
        f"cannot promote {wanted} of {ref.service} from {ref.environment}: that release never "
        f"completed a deployment in {ref.environment}",
        hint=f"`pipeline history {ref.service} --env {ref.environment}` lists the releases that passed it",
    )


def check_requirements(
    ctx: Context, ref: ServiceRef, release: Release, req: Requirements
) -> tuple[Missing, ...]:
    """Every requirement of ``ref``'s environment that ``release`` does not meet, in order:
    the environments it must have passed, then the approval."""
    missing = [
        Missing("passed", env)
        for env in req.passed
        if release.digest not in {r.digest for r in successful_releases(ctx, ServiceRef(ref.service, env))}
    ]
    if req.approval and not _approved(ctx, ref, release, req):
        missing.append(Missing("approval", ref.environment, req.approval, req.verified))
    return tuple(missing)


def require(ctx: Context, ref: ServiceRef, release: Release, req: Requirements) -> None:
    """``PromotionRefused`` carrying ``check_requirements``' items when any is missing."""
    missing = check_requirements(ctx, ref, release, req)
    if missing:
        raise refusal(ref, release, missing)


def refusal(ref: ServiceRef, release: Release, missing: tuple[Missing, ...]) -> PromotionRefused:
    """The refusal for ``missing``: message and hints rendered from the items."""
    return PromotionRefused(
        f"cannot deploy {release.short} of {ref.service} to {ref.environment}: "
        + "; ".join(_missing_text(item, release) for item in missing),
        hint="; ".join(_missing_hint(item, ref) for item in missing),
        missing=missing,
    )


def _approved(ctx: Context, ref: ServiceRef, release: Release, req: Requirements) -> bool:
    return any(
        r.action == "approve"
        and r.digest == release.digest
        and (
            r.data.get("verified") == req.verified
            if req.verified
            else req.approvers is None or r.actor in req.approvers
        )
        for r in ctx.store.history(ref, limit=100_000)
    )


def _missing_text(item: Missing, release: Release) -> str:
    if item.kind == "passed":
        return f"{release.short} has not passed {item.environment}"
    return f"no approval of {release.short} by a member of {item.organisation}"


def _missing_hint(item: Missing, ref: ServiceRef) -> str:
    if item.kind == "passed":
        env = item.environment
        return f"deploy it to {env} first (`pipeline promote {ref.service} --to {env} ...`)"
    if item.verified:
        return (
            f"a member of {item.organisation} approves the promotion pull request on GitHub; "
            "`pipeline approval github-pr` records that review"
        )
    return f"a member of {item.organisation} runs `pipeline approve {ref.service} --env {item.environment}`"


def promote(
    ctx: Context,
    service: str,
    source: str,
    target: str,
    strategy: Strategy,
    req: Requirements,
    *,
    digest: str = "",
) -> DeploymentState:
    """Deploy the same image digest that passed ``source`` (``digest``, or what ``source``
    serves) into ``target``."""
    release = promotable(ctx, service, source, digest)
    ref = ServiceRef(service, target)
    require(ctx, ref, release, req)
    return deploy(ctx, ref, release, strategy, why=f"promote from {source}")


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
