"""Translate botocore exceptions into the toolkit's error hierarchy, in one place.

Every AWS call in ``pipeline.aws`` runs inside ``aws_errors(doing)``::

    with aws_errors(f"update service {name}"):
        ecs.update_service(...)

so a failure reads ``could not update service orders-green: AWS UpdateService answered
AccessDeniedException: ...`` with a hint saying what to do, and is raised ``from`` the
botocore exception. Classification:

- ``TransientPlatformError``: throttling, HTTP 5xx, timeouts and dropped connections
  (botocore has already retried them ``max_attempts`` times);
- ``NotFoundError``: the resource the call names does not exist;
- ``PlatformError``: everything else (access denied, validation, missing credentials).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from pipeline.core.errors import NotFoundError, PipelineError, PlatformError, TransientPlatformError

THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceededException",
        "SlowDown",
        "PriorRequestNotComplete",
        "LimitExceededException",
    }
)
TRANSIENT = THROTTLING | frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServerException",
        "TransactionInProgressException",
    }
)
ACCESS = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }
)
# STS-issued credentials past their expiry (IAM User Guide, "Requesting temporary security
# credentials": "The security token included in the request is expired")
EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException"})
NOT_FOUND = frozenset(
    {
        "ResourceNotFoundException",
        "ServiceNotFoundException",
        "ClusterNotFoundException",
        "TargetGroupNotFound",
        "ListenerNotFound",
        "RuleNotFound",
        "LoadBalancerNotFound",
        "ResourceNotFound",
    }
)
_CONNECTION = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


def error_code(exc: ClientError) -> str:
    """The AWS error code of ``exc`` (``""`` when the response carries none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def translate(exc: ClientError | BotoCoreError, doing: str) -> PipelineError:
    """The toolkit error for a botocore exception raised while ``doing`` something."""
    if isinstance(exc, ClientError):
        return _client_error(exc, doing)
    if isinstance(exc, _CONNECTION):
        return TransientPlatformError(
            f"could not {doing}: the AWS API did not answer ({exc})",
            hint="check the network and the region; it was retried already, so run again in a minute",
        )
    if isinstance(exc, NoCredentialsError):
        return PlatformError(
            f"could not {doing}: no AWS credentials found",
            hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or let CI assume the deploy role through OIDC",
        )
    if isinstance(exc, NoRegionError):
        return PlatformError(
            f"could not {doing}: no AWS region configured",
            hint="set `aws.region` on the environment in pipeline.yaml",
        )
    return PlatformError(
        f"could not {doing}: {type(exc).__name__}: {exc}",
        hint="this is a local botocore failure; check the installed boto3 version",
    )


def _client_error(exc: ClientError, doing: str) -> PipelineError:
    code = error_code(exc)
    status = _status(exc)
    text = str(exc.response.get("Error", {}).get("Message", "")) or "no message"
    what = f"could not {doing}: AWS {exc.operation_name or 'call'} answered {code or status}: {text}"
    if code in TRANSIENT or status >= 500:
        return TransientPlatformError(
            what,
            hint="AWS is throttling or failing for now and botocore's retries ran out; "
            "run the command again in a minute (`pipeline deploy --resume` continues a deployment)",
        )
    if code in EXPIRED:
        return PlatformError(
            what,
            hint="the AWS credentials expired while the command ran: give it credentials that renew "
            "(AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN) or longer-lived ones, then "
            "`pipeline deploy --resume` continues the deployment",
        )
    if code in ACCESS:
        return PlatformError(
            what,
            hint="the deploy role lacks this permission: `pipeline iam-policy --env ENV` prints "
            "the policy it needs",
        )
    if code in NOT_FOUND:
        return NotFoundError(
            what,
            hint="create the service's AWS resources with `pipeline bootstrap --env ENV SERVICE`",
        )
    return PlatformError(what, hint="check the AWS settings of this environment in pipeline.yaml")


@contextmanager
def aws_errors(doing: str) -> Iterator[None]:
    """Re-raise botocore exceptions from the block as toolkit errors (``raise ... from exc``).

    ``doing`` completes the sentence "could not ...", e.g. ``"update service orders-green"``.
    """
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, doing) from exc
