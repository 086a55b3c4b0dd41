"""Promotion: the same digest from one environment to the next, when the target's
requirements hold.

An environment may require that a release passed other environments and that a member
of an organisation approved it. ``check_requirements`` returns what is missing as data
(``Missing`` items); ``require`` raises a ``PromotionRefused`` that carries them, with
its message and hints rendered from the items. Approvals are audit records bound to the
release's digest; ``approve_verified`` records one that GitHub verified.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import PromotionRefused
from pipeline.core.model import Missing, Release, ServiceRef
from pipeline.core.plan import Strategy
from pipeline.core.ports import Record
from pipeline.core.state import DeploymentState
from pipeline.operations import Context, deploy, serving, successful_releases


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


