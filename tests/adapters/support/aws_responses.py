"""Realistic AWS answers for ``botocore.stub.Stubber`` contract tests, for what the test
endpoint cannot produce. Each builder cites the AWS documentation its shape comes from."""

from __future__ import annotations

from typing import Any

from botocore.stub import Stubber

# --- credentials -------------------------------------------------------------------------


def expired_token_error(stub: Stubber, operation: str, expected_params: dict[str, Any] | None = None) -> None:
    """The answer to a request signed with STS credentials past their expiry.

    https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html (``ExpiredToken``
    is the STS form; other services answer ``ExpiredTokenException`` with the same text),
    https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_request.html
    """
    stub.add_client_error(
        operation,
        service_error_code="ExpiredToken",
        service_message="The security token included in the request is expired",
        http_status_code=400,
        expected_params=expected_params,
    )
