"""Web-identity credentials that keep renewing inside a GitHub Actions job.

botocore renews web-identity credentials on its own (``AWS_WEB_IDENTITY_TOKEN_FILE`` +
``AWS_ROLE_ARN``) by calling ``AssumeRoleWithWebIdentity`` again with the token it reads
from the file. A GitHub Actions OIDC token, though, is valid for about five minutes
(aws-actions/configure-aws-credentials#359, actions/toolkit#2048): a file written once
holds an expired token by the time the first role session (one hour by default) ends.

So when the job can ask GitHub for tokens itself (``permissions: id-token: write`` gives
it ``ACTIONS_ID_TOKEN_REQUEST_URL`` and ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``), ``AWS_ROLE_ARN``
names the role and no static keys or token file are set, ``github_session`` builds the
same botocore provider with a token loader that requests a fresh token (audience
``sts.amazonaws.com``) at every renewal. The credentials are botocore
``DeferredRefreshableCredentials``: renewed 15 minutes before they expire, for as long as
the job runs.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from datetime import datetime

import boto3
import botocore.session
from botocore.credentials import AssumeRoleWithWebIdentityCredentialFetcher, DeferredRefreshableCredentials

from pipeline.core.errors import PlatformError

__all__ = ["AUDIENCE", "REQUEST_TOKEN", "REQUEST_URL", "github_session", "github_token_loader"]

REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
AUDIENCE = "sts.amazonaws.com"
METHOD = "assume-role-with-web-identity"


def github_token_loader(
    url: str, bearer: str, *, audience: str = AUDIENCE, timeout: float = 10.0
) -> Callable[[], str]:
    """A function that asks GitHub for a new OIDC token (the job's ID token endpoint)."""
    separator = "&" if "?" in url else "?"
    address = f"{url}{separator}audience={urllib.parse.quote(audience)}"

    def load() -> str:
        request = urllib.request.Request(
            address, headers={"Authorization": f"bearer {bearer}", "Accept": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return str(json.load(answer)["value"])
        except (OSError, ValueError, KeyError) as exc:
            raise PlatformError(
                f"could not get an OIDC token from GitHub Actions ({REQUEST_URL}): {exc}",
                hint="give the job `permissions: id-token: write`",
            ) from exc

    return load


class _Uncached(dict[str, object]):
    """A fetcher cache that keeps nothing: every renewal is a new AssumeRoleWithWebIdentity."""

    def __setitem__(self, key: str, value: object) -> None:
        return None


def github_session(
    environ: Mapping[str, str],
    *,
    region: str,
    session_name: str,
    time_fetcher: Callable[[], datetime] | None = None,
) -> boto3.Session | None:
    """A boto3 session on renewing web-identity credentials from GitHub's token endpoint,
    or None outside a GitHub Actions job that can request tokens for ``AWS_ROLE_ARN`` (or
    when static keys or a token file are set: botocore's chain then decides)."""
    url, bearer, role = environ.get(REQUEST_URL), environ.get(REQUEST_TOKEN), environ.get("AWS_ROLE_ARN")
    if not (url and bearer and role):
        return None
    if any(environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_PROFILE")):
        return None
    core = botocore.session.Session()
    core.set_config_variable("region", region)
    fetcher = AssumeRoleWithWebIdentityCredentialFetcher(
        client_creator=core.create_client,
        web_identity_token_loader=github_token_loader(url, bearer),
        role_arn=role,
        extra_args={"RoleSessionName": environ.get("AWS_ROLE_SESSION_NAME") or session_name},
        cache=_Uncached(),  # the refreshable credentials below decide when to fetch, on their clock
    )
    extra = {"time_fetcher": time_fetcher} if time_fetcher else {}
    credentials = DeferredRefreshableCredentials(
        refresh_using=fetcher.fetch_credentials, method=METHOD, **extra
    )
    # botocore has no public setter for a session's credentials; aws-cli sets this too.
    core._credentials = credentials  # type: ignore[attr-defined]
    return boto3.Session(botocore_session=core, region_name=region)
