"""What an environment demands of a release, checked on every path that changes it.

An environment may require that a release passed other environments and that a member of
an organisation approved it (``requires:`` in pipeline.yaml). ``unmet`` returns what is
missing as data (``Missing`` items); ``refusal`` renders a ``PromotionRefused`` from them.
``admit`` is the gate that deploy, resume, continue, rollback and promote all pass: the
requirements hold, or a break-glass ``Override`` by a member of the organisation that owns
the environment (by an identity the caller cannot set, ``pipeline.identity``) lets the
release through and leaves an ``override-requirements`` audit record.

Approvals count by the identity stored in the approve record, never by its actor label.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.core.errors import PromotionRefused, UsageError
from pipeline.core.model import Missing, Release, ServiceRef
from pipeline.core.ports import Record
from pipeline.identity import Identity, is_member

SUCCEEDED = "deployment.succeeded"
OVERRIDE = "override-requirements"
"""Action of the audit record a break-glass deployment leaves (shown by ``pipeline history``)."""

History = Callable[[ServiceRef], Sequence[Record]]
"""The history of a (service, environment), from that environment's store."""


@dataclass(frozen=True)
class Requirements:
    """What an environment demands of a release before it may be deployed there."""

    passed: tuple[str, ...] = ()
    approval: str | None = None  # organisation whose member must approve
    approvers: frozenset[str] | None = None  # members of that organisation; None = anyone
    verified: str | None = None  # "github": only approvals verified through GitHub count
    unverified: bool = False  # OS-account identities count (approvals and break-glass)
    owner: str = ""  # organisation that owns the environment (may break glass)
    owners: frozenset[str] | None = None  # its members; None = anyone

    @property
    def any(self) -> bool:
        return bool(self.passed or self.approval)


@dataclass(frozen=True)
class Override:
    """A break-glass request: deploy although requirements are unmet, for ``reason``."""

    reason: str
    identity: Identity


def successful_releases(history: History, ref: ServiceRef) -> list[Release]:
    """Releases that completed a deployment in ``ref``'s environment, oldest first."""
    return [
        Release.from_dict(r.data["release"])
        for r in history(ref)
        if r.action == SUCCEEDED and "release" in r.data
    ]


def unmet(history: History, ref: ServiceRef, release: Release, req: Requirements) -> tuple[Missing, ...]:
    """Every requirement of ``ref``'s environment that ``release`` does not meet, in order:
    the environments it must have passed, then the approval."""

    def passed(env: str) -> bool:
        releases = successful_releases(history, ServiceRef(ref.service, env))
        return release.digest in {r.digest for r in releases}

    missing = [Missing("passed", env) for env in req.passed if not passed(env)]
    if req.approval and not approved(history(ref), release, req):
        missing.append(Missing("approval", ref.environment, req.approval, req.verified))
    return tuple(missing)


def approved(records: Sequence[Record], release: Release, req: Requirements) -> bool:
    """An approve record for ``release.digest`` whose proven identity is a member of the
    approving organisation (GitHub-verified only, when the organisation says so)."""
    for r in records:
        if r.action != "approve" or r.digest != release.digest:
            continue
        if req.verified:
            if r.data.get("verified") == req.verified:
                return True
            continue
        identity = Identity.from_dict(r.data.get("identity"))
        if identity is not None and is_member(identity, req.approvers, unverified=req.unverified):
            return True
    return False


def admit(
    history: History, ref: ServiceRef, release: Release, req: Requirements, override: Override | None
) -> tuple[Missing, ...]:
    """The gate before any change to ``ref``'s environment: returns the unmet requirements
    (empty when all hold). Raises ``PromotionRefused`` when some are unmet and there is no
    override, or the override is not allowed to its identity."""
    missing = unmet(history, ref, release, req)
    if not missing:
        return ()
    if override is None:
        raise refusal(ref, release, missing)
    authorise(ref, req, override)
    return missing


def authorise(ref: ServiceRef, req: Requirements, override: Override) -> None:
    """Break glass only with a reason, and only as a member of the owning organisation."""
    if not override.reason.strip():
        raise UsageError(
            "--override-requirements needs --reason: it is recorded in the history and the audit",
            hint='e.g. --reason "incident 4711: hotfix, staging is down"',
        )
    if not is_member(override.identity, req.owners, unverified=req.unverified):
        why = "" if override.identity.verified or req.unverified else (
            f"; {ref.environment} does not accept unverified identities (requires.unverified)"
        )
        raise PromotionRefused(
            f"{override.identity.describe()} may not override the requirements of {ref.environment}: "
            f"only a member of {req.owner or 'the owning organisation'}, which owns it{why}",
            hint=f"ask a member of {req.owner} (organisations.{req.owner}.members in pipeline.yaml)",
        )


def override_record(
    ref: ServiceRef, deployment: str, release: Release, missing: Sequence[Missing], override: Override,
    *, ts: float, actor: str,
) -> Record:
    """The audit record of a break-glass deployment: who (proven), why, and what was unmet."""
    unmet_text = "; ".join(_missing_text(item, release) for item in missing)
    return Record(
        ts=ts,
        ref=ref,
        deployment=deployment,
        actor=actor,
        action=OVERRIDE,
        version=release.version,
        digest=release.digest,
        detail=(
            f"BREAK-GLASS: requirements of {ref.environment} overridden by "
            f"{override.identity.describe()}: {override.reason} (unmet: {unmet_text})"
        ),
        data={
            "identity": override.identity.to_dict(),
            "reason": override.reason,
            "missing": [item.kind + ":" + (item.organisation or item.environment) for item in missing],
            "release": release.to_dict(),
        },
        kind="audit",
    )


def overridden(records: Sequence[Record], deployment: str) -> bool:
    """Whether ``deployment`` was started (or resumed) with a recorded break-glass override."""
    return bool(deployment) and any(r.action == OVERRIDE and r.deployment == deployment for r in records)


def refusal(ref: ServiceRef, release: Release, missing: tuple[Missing, ...]) -> PromotionRefused:
    """The refusal for ``missing``: message and hints rendered from the items."""
    return PromotionRefused(
        f"cannot deploy {release.short} of {ref.service} to {ref.environment}: "
        + "; ".join(_missing_text(item, release) for item in missing),
        hint="; ".join(_missing_hint(item, ref) for item in missing)
        + "; in an emergency, a member of the owning organisation may pass "
        '`--override-requirements --reason "..."` (recorded in the audit)',
        missing=missing,
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
