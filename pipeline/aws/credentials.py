"""How long an environment's AWS credentials last, and whether a deployment fits in them.

A deployment process holds its credentials for as long as the deployment runs: through
the readiness wait, every bake and analysis window, every hold for ``pipeline continue``
and the drain. Credentials that expire half-way leave a deployment stuck between two
releases with a process that can no longer move traffic back. So before anything
changes, the span the strategy may take is compared with what the credentials allow:

- **Renewed** credentials have no limit: botocore's own providers fetch new ones before
  the old expire (web identity from ``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``, or
  from GitHub's token endpoint: ``pipeline.aws.web_identity``; SSO, the container and
  instance roles, ``credential_process``).
- **Fixed** credentials (environment variables, the credentials file, explicit keys) are
  never renewed. Long-term keys (no session token) do not expire. Temporary ones expire
  at ``AWS_CREDENTIAL_EXPIRATION`` when it is set (botocore reads it); without it they
  are taken to last ``TEMPORARY_SECONDS`` from the start of the command, the one-hour
  default of GitHub's ``configure-aws-credentials`` and of STS.
- **Chained**: with ``aws.role_arn`` the environment's role is assumed with the base
  credentials and re-assumed (with the same base) before its one-hour session ends, so
  the deployment can last as long as the base credentials can re-assume: no limit with
  renewed or long-term base credentials; with fixed temporary ones, until they expire,
  and at least one role session (``role_seconds``) from the start.

``deployment_span(strategy)`` is the longest the engine may run a strategy without a
failure: every deadline and timed wait added up (see its docstring). A deployment that is
resumed or continued in another process (``pipeline deploy --resume``, ``pipeline
continue``) is held to the same rule for what is left of its stored plan:
``remaining_span(state, now)`` and ``check_rest_fits``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipeline.core.errors import UsageError
from pipeline.core.plan import Strategy
from pipeline.core.state import DeploymentState, Hold, Phase
from pipeline.core.steps import Analyze, Approve, LoadStage, Pause, SetWeight, TestStage

__all__ = [
    "FIXED_METHODS",
    "TEMPORARY_SECONDS",
    "Lifetime",
    "check_fits",
    "check_rest_fits",
    "deployment_span",
    "is_same_role",
    "lifetime_of",
    "remaining_span",
]

# botocore credential ``method`` values whose credentials nothing renews
FIXED_METHODS = frozenset({"env", "explicit", "shared-credentials-file", "config-file", "boto-config"})
TEMPORARY_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Lifetime:
    """Until when credentials can sign requests (``expires_at`` None: renewed, no limit)."""

    expires_at: datetime | None
    source: str  # what the credentials are, for messages


def lifetime_of(
    credentials: Any, now: datetime, *, chained: bool, role_seconds: float
) -> Lifetime:
    """The lifetime of ``credentials`` (botocore ``Credentials``, as the session resolved
    them) when used directly, or, ``chained``, to re-assume the environment's role."""
    if credentials is None:
        return Lifetime(None, "no credentials")
    method = str(getattr(credentials, "method", "") or "")
    if method not in FIXED_METHODS:
        return Lifetime(None, f"{method or 'provider'} credentials, renewed by botocore")
    # botocore keeps no public accessor for the expiry of credentials (boto/botocore#2694)
    expiry: datetime | None = getattr(credentials, "_expiry_time", None)
    if expiry is not None:
        base = Lifetime(expiry, f"fixed {method} credentials expiring at {expiry:%H:%M:%S} UTC "
                        "(AWS_CREDENTIAL_EXPIRATION)")
    elif not credentials.get_frozen_credentials().token:
        return Lifetime(None, f"long-term {method} access keys")
    else:
        until = now + timedelta(seconds=TEMPORARY_SECONDS)
        base = Lifetime(until, f"fixed temporary {method} credentials without a stated expiry "
                        f"(taken as {_duration(TEMPORARY_SECONDS, up=False)})")
    if chained and base.expires_at is not None:
        one_session = now + timedelta(seconds=role_seconds)
        return Lifetime(max(base.expires_at, one_session), f"a role chained from {base.source}")
    return base


def is_same_role(caller_arn: str, role_arn: str) -> bool:
    """True when ``caller_arn`` (GetCallerIdentity) is a session of the role ``role_arn``.

    ``arn:aws:sts::ACCT:assumed-role/NAME/SESSION`` is a session of
    ``arn:aws:iam::ACCT:role/PATH/NAME``: same partition and account, same role name (an
    assumed-role ARN carries no path).
    """
    caller, role = caller_arn.split(":", 5), role_arn.split(":", 5)
    if len(caller) != 6 or len(role) != 6 or caller[2] != "sts" or role[2] != "iam":
        return False
    kind, _, rest = caller[5].partition("/")
    name = rest.split("/", 1)[0]
    return (
        kind == "assumed-role"
        and caller[1] == role[1]
        and caller[4] == role[4]
        and role[5].startswith("role/")
        and role[5].rsplit("/", 1)[-1] == name
    )


def deployment_span(strategy: Strategy, *, ready: bool = True) -> tuple[float, list[str]]:
    """The longest a deployment of ``strategy`` runs without failing, and its parts.

    Readiness (``timeouts.ready``), every step (a weight change: ``timeouts.verify``; a
    timed pause or bake: its seconds; a pause or approval that waits for ``pipeline
    continue``: ``timeouts.hold``; an analysis: its window, the metrics lag and one
    interval; a test or load stage: ``timeouts.stage``), one more hold when an
    inconclusive analysis pauses (``on_inconclusive: pause``), the final switch
    (``timeouts.verify``), the drain and ``keep_previous``. ``ready`` False: the new slot
    was already ready (a deployment under way).
    """
    t = strategy.timeouts
    parts: dict[str, float] = {"ready": t.ready if ready else 0.0}

    def add(label: str, seconds: float) -> None:
        parts[label] = parts.get(label, 0.0) + seconds

    for step in strategy.steps:
        match step:
            case SetWeight():
                add("weight checks", t.verify)
            case Pause(seconds=None) | Approve():
                add("holds for `pipeline continue`", t.hold)
            case Pause(seconds=seconds):
                add("pauses", seconds or 0.0)
            case Analyze():
                a = strategy.analysis
                add("analyses", a.window_seconds + a.lag_seconds + a.interval_seconds)
            case TestStage() | LoadStage():
                add("stages", t.stage)
    if strategy.analysis.on_inconclusive == "pause" and any(isinstance(s, Analyze) for s in strategy.steps):
        add("a hold on an inconclusive analysis", t.hold)  # waits for `pipeline continue`
    add("weight checks", t.verify)
    add("drain", strategy.drain_seconds)
    add("keep_previous", strategy.keep_previous)
    described = [f"{label} {_duration(seconds, up=True)}" for label, seconds in parts.items() if seconds > 0]
    return sum(parts.values()), described


def remaining_span(state: DeploymentState, now: float) -> tuple[float, list[str]]:
    """The longest the rest of ``state``'s stored plan may run from ``now`` (engine epoch
    seconds), as ``deployment_span`` counts it: readiness while the new slot is starting,
    the current step and those after it (a timed pause under way counts what is left of
    it), then the final switch, the drain and ``keep_previous``; a deployment that is
    promoting, draining or rolling back has only the switch and the drain left."""
    steps = state.steps[state.step_index:]
    if state.phase in (Phase.PROMOTING, Phase.DRAINING, Phase.ROLLING_BACK):
        steps = ()
    pending = state.pending
    timed = bool(steps) and isinstance(steps[0], Pause) and bool(steps[0].seconds)
    if timed and isinstance(pending, Hold) and pending.until is not None:
        steps = (Pause(max(0.0, pending.until - now)), *steps[1:])
    rest = Strategy(
        steps=steps,
        analysis=state.analysis,
        timeouts=state.timeouts,
        keep_previous=0.0 if state.phase is Phase.ROLLING_BACK else state.keep_previous,
        drain_seconds=state.drain_seconds,
    )
    return deployment_span(rest, ready=state.phase in (Phase.PENDING, Phase.STARTING))


def check_fits(lifetime: Lifetime, strategy: Strategy, now: datetime, *, environment: str) -> None:
    """UsageError when a deployment of ``strategy`` may outlast ``lifetime``."""
    if lifetime.expires_at is None:
        return
    span, parts = deployment_span(strategy)
    _refuse_beyond(lifetime, now, span, parts, f"a deployment to {environment}", _RENEW_HINT)


def check_rest_fits(
    lifetime: Lifetime, state: DeploymentState, now: datetime, epoch: float, *, command: str
) -> None:
    """UsageError, before anything changes, when what is left of ``state``'s deployment
    (``remaining_span`` from ``epoch``, the engine clock's now) may outlast ``lifetime``.
    ``command`` is what was asked (``resume``, ``continue``), for the message."""
    if lifetime.expires_at is None:
        return
    span, parts = remaining_span(state, epoch)
    what = (
        f"the rest of deployment {state.id} of {state.ref.service} to {state.ref.environment} "
        f"({state.phase.value}, step {min(state.step_index + 1, len(state.steps))} of {len(state.steps)})"
    )
    hint = (
        "nothing was changed: the deployment waits where it is. Give this process credentials that "
        "renew (in GitHub Actions: `permissions: id-token: write` and AWS_ROLE_ARN instead of "
        "configure-aws-credentials; elsewhere AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN) and run "
        f"`pipeline {command}` again (if the credentials last longer, say so with "
        "AWS_CREDENTIAL_EXPIRATION), or end it with `pipeline rollback`"
    )
    _refuse_beyond(lifetime, now, span, parts, what, hint)


_RENEW_HINT = (
    "give the process credentials that renew (in GitHub Actions: `permissions: id-token: "
    "write` and AWS_ROLE_ARN instead of configure-aws-credentials; elsewhere "
    "AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), or shorten the holds and "
    "timeouts (deploy.timeouts, max_pause on the environment); if the credentials last longer, "
    "say so with AWS_CREDENTIAL_EXPIRATION"
)


def _refuse_beyond(
    lifetime: Lifetime, now: datetime, span: float, parts: list[str], what: str, hint: str
) -> None:
    assert lifetime.expires_at is not None
    left = (lifetime.expires_at - now).total_seconds()
    if span <= left:
        return
    raise UsageError(
        f"{what} may take up to {_duration(span, up=True)} ({', '.join(parts)}), but its AWS "
        f"credentials last {_duration(left, up=False)}: {lifetime.source}",
        hint=hint,
    )


def _duration(seconds: float, *, up: bool) -> str:
    """``seconds`` for a person, rounded ``up`` (a need) or down (what is available):
    ``45s``, ``40m``, ``24h30m``."""
    whole = max(0, math.ceil(seconds) if up else math.floor(seconds))
    if whole < 120:
        return f"{whole}s"
    minutes = -(-whole // 60) if up else whole // 60
    if minutes < 120:
        return f"{minutes}m"
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}m" if rest else f"{hours}h"
