"""AwsSession against moto's STS over HTTP, and the translation of botocore errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError, ReadTimeoutError

from pipeline.aws.errors import aws_errors, translate
from pipeline.aws.polling import wait_until
from pipeline.aws.session import AwsSession, SessionSettings, session_name
from pipeline.core.errors import NotFoundError, PlatformError, TransientPlatformError
from pipeline.testing import FakeClock
from tests.adapters.conftest import REGION

ROLE = "arn:aws:iam::123456789012:role/pipeline-deploy"


class Now:
    """A settable UTC clock for botocore's credential refresh decisions."""

    def __init__(self) -> None:
        self.value = datetime.now(tz=UTC)

    def __call__(self) -> datetime:
        return self.value


def assume_role_calls(base: boto3.Session) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    base.events.register(
        "provide-client-params.sts.AssumeRole", lambda params, **_: calls.append(dict(params))
    )
    return calls


def test_assumes_the_environment_role_with_a_session_name_naming_the_actor(aws: str) -> None:
    base = boto3.Session(region_name=REGION)
    calls = assume_role_calls(base)
    session = AwsSession(
        SessionSettings(REGION, role_arn=ROLE, actor="alice@ci", role_seconds=7200), base=base
    )

    identity = session.client("sts").get_caller_identity()

    assert identity["Arn"].endswith(":assumed-role/pipeline-deploy/pipeline-alice@ci"), identity["Arn"]
    assert len(calls) == 1
    assert calls[0]["RoleSessionName"] == "pipeline-alice@ci"
    assert calls[0]["DurationSeconds"] == 3600  # capped: role chaining allows one hour


def test_refreshes_assumed_credentials_before_they_expire(aws: str) -> None:
    base, now = boto3.Session(region_name=REGION), Now()
    calls = assume_role_calls(base)
    session = AwsSession(SessionSettings(REGION, role_arn=ROLE), base=base, utc_now=now)
    ecs = session.client("ecs")

    ecs.list_clusters()
    ecs.list_clusters()
    assert len(calls) == 1  # still fresh: reused
    first_expiry = session.credentials_expiry()
    assert first_expiry is not None

    now.value += timedelta(minutes=50)  # within 15 minutes of expiry: botocore refreshes
    ecs.list_clusters()

    # The endpoint stamps Expiration on the wall clock, which ``now`` has left 50 minutes
    # behind, so the renewed credentials look due again and may be renewed once more.
    assert len(calls) >= 2
    assert session.credentials_expiry() != first_expiry


def test_without_a_role_uses_the_ambient_credentials_and_caches_clients(aws: str) -> None:
    session = AwsSession(SessionSettings(REGION))
    assert session.client("ecs") is session.client("ecs")
    assert session.client("ecs", retries=False) is not session.client("ecs")
    assert session.credentials_expiry() is None
    assert session.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_session_names_are_sanitised_and_bounded() -> None:
    assert session_name("dependabot[bot]") == "pipeline-dependabot-bot-"
    assert len(session_name("x" * 200)) == 64


def _client_error(code: str, status: int, operation: str = "UpdateService") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} says no"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ThrottlingException", 400, TransientPlatformError),
        ("Throttling", 400, TransientPlatformError),
        ("InternalFailure", 500, TransientPlatformError),
        ("", 503, TransientPlatformError),
        ("AccessDeniedException", 400, PlatformError),
        ("ServiceNotFoundException", 400, NotFoundError),
        ("InvalidParameterException", 400, PlatformError),
    ],
)
def test_client_errors_become_toolkit_errors_naming_code_and_operation(
    code: str, status: int, kind: type[Exception]
) -> None:
    error = translate(_client_error(code, status), "update service orders-green")
    assert type(error) is kind
    assert error.message.startswith("could not update service orders-green: AWS UpdateService answered")
    assert (code or str(status)) in error.message
    assert error.hint


def test_access_denied_points_at_the_iam_policy_command() -> None:
    with pytest.raises(PlatformError) as caught, aws_errors("modify rule"):
        raise _client_error("AccessDenied", 403, "ModifyRule")
    assert "iam-policy" in caught.value.hint
    assert isinstance(caught.value.__cause__, ClientError)
    assert not isinstance(caught.value, TransientPlatformError)


def test_timeouts_are_transient_and_missing_credentials_are_not() -> None:
    timeout = translate(ReadTimeoutError(endpoint_url="http://x"), "read rule")
    assert isinstance(timeout, TransientPlatformError)
    missing = translate(NoCredentialsError(), "read rule")
    assert type(missing) is PlatformError and "credentials" in missing.message


def test_wait_until_polls_on_the_injected_clock_and_gives_up_at_the_deadline() -> None:
    clock = FakeClock(1000.0)
    answers = iter([None, None, "ACTIVE"])
    assert wait_until(lambda: next(answers), clock=clock, timeout=30, interval=2, what="x") == "ACTIVE"
    assert clock.slept == 4.0

    with pytest.raises(TransientPlatformError, match="table ready did not happen within 10 s"):
        wait_until(lambda: None, clock=clock, timeout=10, interval=2, what="table ready")
    assert clock.slept == 4.0 + 10.0
