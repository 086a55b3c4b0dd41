"""Reserved and provisioned concurrency of a function, and the throttling guard.

- Reserved concurrency is a function-wide cap (``put_function_concurrency``); applying the
  configured value is idempotent.
- Provisioned concurrency is allocated on a *version*, never on an alias: an alias that
  routes to two versions cannot carry it. Allocation takes minutes on AWS; the compute
  polls ``provisioned()`` until READY. Endpoints that do not implement the API (moto
  answers a bare HTTP 404) are reported as ``UNSUPPORTED`` so callers can warn and warm
  the version up by invocations instead.
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

__all__ = ["ConcurrencyApi", "GuardResult", "Provisioned", "throttle_guard"]

IAM_ACTIONS: frozenset[str] = frozenset(
    {
        "lambda:PutFunctionConcurrency",
        "lambda:GetFunctionConcurrency",
        "lambda:PutProvisionedConcurrencyConfig",
        "lambda:GetProvisionedConcurrencyConfig",
        "lambda:DeleteProvisionedConcurrencyConfig",
    }
)

_NO_CONFIG = "ProvisionedConcurrencyConfigNotFoundException"


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
        """Set the function's reserved concurrency. Idempotent: no write when it is already so."""
        if self.reserved() == executions:
            return
        with aws_errors(f"reserve {executions} concurrent executions for {self.function}"):
            self.client.put_function_concurrency(
                FunctionName=self.function, ReservedConcurrentExecutions=executions
            )

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
