"""Promotion: the same digest from one environment to the next, when the target's
requirements hold.

An environment may require that a release passed other environments and that a member
of an organisation approved it (``pipeline.requirements``, the gate every path into an
environment passes). ``check_requirements`` returns what is missing as data (``Missing``
items); ``require`` raises a ``PromotionRefused`` that carries them, unless an allowed
break-glass override applies. Approvals are audit records bound to the release's digest
and to the approver's proven identity (``pipeline.identity``); ``approve_verified``
records one that GitHub verified.
"""

from __future__ import annotations

from dataclasses import replace

from pipeline.core.errors import PromotionRefused
from pipeline.core.model import Missing, Release, ServiceRef
from pipeline.core.plan import Strategy
from pipeline.core.ports import Record
from pipeline.core.state import DeploymentState
from pipeline.identity import Identity
from pipeline.operations import Context, deploy, serving, successful_releases
from pipeline.requirements import Requirements, admit, refusal, unmet

__all__ = [
    "Requirements",
    "approve",
    "approve_verified",
    "check_requirements",
    "promotable",
    "promote",
    "refusal",
    "require",
]


def approve(ctx: Context, ref: ServiceRef, release: Release, organisation: str, identity: Identity) -> None:
    """Record that ``identity`` (proven: an OS account or an STS ARN) approved ``release``
    for ``ref``'s environment; ``ctx.actor`` only labels the record. Whether the approval
    counts is decided when requirements are checked (membership, unverified identities)."""
    record = Record(
        ts=ctx.clock.now(),
        ref=ref,
        deployment="",
        actor=ctx.actor,
        action="approve",
        version=release.version,
        digest=release.digest,
        detail=f"approved {release.short} for {ref.environment} on behalf of {organisation} "
        f"as {identity.describe()}",
        data={"release": release.to_dict(), "organisation": organisation, "identity": identity.to_dict()},
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
    data = {"verified": source, "reviewer": reviewer, "url": url, "digest": release.digest,
            "identity": {"name": reviewer, "source": source, "verified": True}}
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
    the environments it must have passed, then the approval (``requirements.unmet``)."""
    return unmet(ctx.history, ref, release, req)


def require(ctx: Context, ref: ServiceRef, release: Release, req: Requirements) -> None:
    """``PromotionRefused`` carrying ``check_requirements``' items when any is missing and
    ``ctx.override`` does not (allowed) break the glass."""
    admit(ctx.history, ref, release, req, ctx.override)


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
    return deploy(replace(ctx, requires=req), ref, release, strategy, why=f"promote from {source}")


