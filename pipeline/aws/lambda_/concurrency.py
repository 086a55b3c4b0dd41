"""Reserved and provisioned concurrency of a function, and the throttling guard.

- Reserved concurrency is a function-wide cap (``put_function_concurrency``): it applies to
  every version at once, the live one included, and AWS refuses it when it would leave
  the account less than 100 unreserved concurrent executions (or its whole limit, in
  accounts whose limit is lower)
  (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html). So it is
  set by ``pipeline bootstrap`` (a plan step), never as a side effect of a deployment, and
  ``reserve`` checks ``GetAccountSettings`` first and refuses with the numbers.
- Provisioned concurrency is allocated on a *version*, never on an alias: an alias that
  routes to two versions cannot carry it. During a shift both versions hold it, so
  ``provision_budget`` checks that twice the configured amount fits the function's
  reservation and the account's unreserved pool (keeping its minimum).
  Allocation takes minutes on AWS; the compute polls ``provisioned()`` until READY.
  Endpoints that do not implement an API (moto answers a bare HTTP 404) are reported as
  ``UNSUPPORTED`` (or no account settings) so callers can warn instead.
- The throttling guard compares the concurrency the expected peak needs
  (requests per second × p95 duration in seconds) with the reservation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from pipeline.aws.errors import aws_errors
from pipeline.aws.lambda_.api import error_code
from pipeline.core.errors import PlatformError

__all__ = [
    "UNRESERVED_MINIMUM",
    "AccountConcurrency",
    "ConcurrencyApi",
    "GuardResult",
    "Provisioned",
    "reservation_note",
    "throttle_guard",
]

IAM_ACTIONS: frozenset[str] = frozenset(
    {
        "lambda:PutFunctionConcurrency",
        "lambda:GetFunctionConcurrency",
        "lambda:PutProvisionedConcurrencyConfig",
        "lambda:GetProvisionedConcurrencyConfig",
        "lambda:DeleteProvisionedConcurrencyConfig",
        "lambda:GetAccountSettings",
    }
)

UNRESERVED_MINIMUM = 100  # AWS keeps at least this many concurrent executions unreserved

_NO_CONFIG = "ProvisionedConcurrencyConfigNotFoundException"


@dataclass(frozen=True, slots=True)
class AccountConcurrency:
    """``GetAccountSettings``'s ``AccountLimit``: concurrent executions, and how many are unreserved."""

    limit: int
    unreserved: int

    @property
    def minimum(self) -> int:
        """What AWS keeps unreserved: 100, or the whole limit of a smaller account (10, 50)."""
        return min(UNRESERVED_MINIMUM, self.limit)


@dataclass(frozen=True, slots=True)
class Provisioned:
    """Provisioned concurrency of one version. ``status``: IN_PROGRESS, READY, FAILED or UNSUPPORTED."""

    requested: int
    allocated: int
    status: str
    reason: str = ""


UNSUPPORTED = Provisioned(
    0, 0, "UNSUPPORTED", "the Lambda endpoint does not implement provisioned concurrency"
)


def _unsupported(exc: ClientError) -> bool:
    """A bare 404 (no AWS error code) means the endpoint lacks the API altogether."""
    return error_code(exc) == "404"


class ConcurrencyApi:
    """Concurrency settings of one function. ``client`` is a boto3 Lambda client."""

    def __init__(self, client: Any, function: str) -> None:
        self.client = client
        self.function = function

    def reserve(self, executions: int) -> None:
        """Set the function's reserved concurrency (all its versions, the live one too).

        Idempotent: no write when it is already so. Refuses with PlatformError, before
        writing, when the account's unreserved pool would fall below its minimum of 100.
        """
        current = self.reserved()
        if current == executions:
            return
        doing = f"reserve {executions} concurrent executions for {self.function}"
        account = self.account()
        if account is not None:
            left = account.unreserved - (executions - (current or 0))
            if left < account.minimum:
                raise PlatformError(
                    f"cannot {doing}: the account would keep {left} unreserved concurrent executions"
                    f" (it has {account.unreserved} of {account.limit}; AWS keeps at least "
                    f"{account.minimum})",
                    hint="lower lambda.reserved_concurrency, release other functions' reservations, or ask "
                    "AWS for a higher concurrency quota (Service Quotas: Lambda concurrent executions)",
                )
        try:
            self.client.put_function_concurrency(
                FunctionName=self.function, ReservedConcurrentExecutions=executions
            )
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if error_code(exc) == "InvalidParameterValueException" and "Unreserved" in message:
                raise PlatformError(
                    f"cannot {doing}: AWS refused it: {message}",
                    hint="lower lambda.reserved_concurrency or ask AWS for a higher concurrency quota",
                ) from exc
            with aws_errors(doing):
                raise

    def account(self) -> AccountConcurrency | None:
        """The account's concurrency in this region; None where the endpoint lacks the API."""
        try:
            data = self.client.get_account_settings()
        except ClientError as exc:
            if _unsupported(exc):
                return None
            with aws_errors("read the account's Lambda concurrency"):
                raise
        limit = data.get("AccountLimit", {})
        return AccountConcurrency(
            limit=int(limit.get("ConcurrentExecutions", 0)),
            unreserved=int(limit.get("UnreservedConcurrentExecutions", 0)),
        )

    def require_budget(self, executions: int, reserved: int | None) -> None:
        """PlatformError, before any allocation, when two versions holding ``executions``
        each cannot fit (``reserved``: the function's reservation as read)."""
        why = self.provision_budget(executions, reserved)
        if why is not None:
            raise PlatformError(
                f"cannot provision {executions} concurrent executions on the new version of "
                f"{self.function}: {why}",
                hint="lower lambda.provisioned_concurrency, raise lambda.reserved_concurrency (then "
                "`pipeline bootstrap`), or ask AWS for a higher concurrency quota",
            )

    def provision_budget(self, executions: int, reserved: int | None) -> str | None:
        """Why two versions holding ``executions`` each cannot fit, or None when they can
        (``reserved``: the function's reservation as read, None without one).

        During a shift the stable and the new version both hold provisioned concurrency.
        With a reservation, all of a function's provisioned concurrency must fit in it;
        without one, the new version's comes out of the account's unreserved pool, which
        keeps 100.
        """
        needed = 2 * executions
        if reserved is not None:
            if needed > reserved:
                return (
                    f"two versions × {executions} provisioned = {needed} exceeds the reserved "
                    f"concurrency {reserved} of {self.function}"
                )
            return None
        # The stable version's allocation is already out of the unreserved pool: the new
        # version's comes on top of it.
        account = self.account()
        if account is not None and account.unreserved - executions < account.minimum:
            return (
                f"{executions} more provisioned for the new version (the stable one keeps its own) would "
                f"leave the account {account.unreserved - executions} unreserved concurrent executions "
                f"(minimum {account.minimum})"
            )
        return None

    def reserved(self) -> int | None:
        with aws_errors(f"read the reserved concurrency of {self.function}"):
            data = self.client.get_function_concurrency(FunctionName=self.function)
        value = data.get("ReservedConcurrentExecutions")
        return None if value is None else int(value)

    def provision(self, version: str, executions: int) -> Provisioned:
        """Request ``executions`` warm environments on ``version`` (idempotent; does not wait)."""
        try:
            data = self.client.put_provisioned_concurrency_config(
                FunctionName=self.function, Qualifier=version, ProvisionedConcurrentExecutions=executions
            )
        except ClientError as exc:
            if _unsupported(exc):
                return UNSUPPORTED
            with aws_errors(f"provision concurrency on {self.function}:{version}"):
                raise
        return _provisioned(data)

    def provisioned(self, version: str) -> Provisioned | None:
        """The allocation on ``version``; None when none was requested."""
        try:
            data = self.client.get_provisioned_concurrency_config(
                FunctionName=self.function, Qualifier=version
            )
        except ClientError as exc:
            if _unsupported(exc):
                return UNSUPPORTED
            if error_code(exc) == _NO_CONFIG:
                return None
            with aws_errors(f"read the provisioned concurrency of {self.function}:{version}"):
                raise
        return _provisioned(data)

    def release(self, version: str) -> None:
        """Remove the allocation on ``version``. Idempotent; a no-op where unsupported."""
        try:
            self.client.delete_provisioned_concurrency_config(FunctionName=self.function, Qualifier=version)
        except ClientError as exc:
            if _unsupported(exc) or error_code(exc) in (_NO_CONFIG, "ResourceNotFoundException"):
                return
            with aws_errors(f"release the provisioned concurrency of {self.function}:{version}"):
                raise


def _provisioned(data: dict[str, Any]) -> Provisioned:
    return Provisioned(
        requested=int(data.get("RequestedProvisionedConcurrentExecutions", 0) or 0),
        allocated=int(data.get("AllocatedProvisionedConcurrentExecutions", 0) or 0),
        status=str(data.get("Status", "IN_PROGRESS")),
        reason=str(data.get("StatusReason", "") or ""),
    )


def reservation_note(function: str, reserved: int | None, wanted: int | None) -> str | None:
    """A warning when ``function``'s reservation is not the configured one, else None.

    A deployment never changes it: ``pipeline bootstrap`` applies it, since it caps every
    version of the function, the live one too.
    """
    if wanted is None or reserved == wanted:
        return None
    return (
        f"reserved concurrency of {function} is {'unset' if reserved is None else reserved}, "
        f"lambda.reserved_concurrency says {wanted}: `pipeline bootstrap` applies it "
        "(to every version, the live one too); the deployment leaves it as it is"
    )


@dataclass(frozen=True, slots=True)
class GuardResult:
    """``passed`` is False only in ``fail`` mode with too little reserved concurrency."""

    passed: bool
    message: str = ""


def throttle_guard(
    *,
    expected_peak_rps: float | None,
    p95_ms: float | None,
    reserved: int | None,
    mode: Literal["warn", "fail"],
) -> GuardResult:
    """Check that ``reserved`` concurrent executions can carry the expected peak.

    Needed executions = ``expected_peak_rps`` × p95 duration in seconds (Little's law),
    rounded up. Nothing to check without a reservation or an expected peak; without
    duration data the guard says so and passes.
    """
    if reserved is None or expected_peak_rps is None:
        return GuardResult(True)
    if p95_ms is None:
        return GuardResult(True, "throttle guard skipped: no Duration data for the function yet")
    needed = math.ceil(expected_peak_rps * p95_ms / 1000.0)
    if needed <= reserved:
        return GuardResult(True)
    message = (
        f"throttle risk: expected peak {expected_peak_rps:g} rps × p95 {p95_ms:.0f} ms needs "
        f"{needed} concurrent executions, but reserved concurrency is {reserved}; "
        "raise lambda.reserved_concurrency or lower lambda.expected_peak_rps"
    )
    return GuardResult(mode == "warn", message)
