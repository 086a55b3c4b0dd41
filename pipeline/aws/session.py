"""One AWS session per environment: region, assumed role, retries and a client cache.

- **Endpoint.** boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``)
  natively, for STS too, so the same code runs against AWS and against moto's server;
  ``SessionSettings.endpoint_url`` overrides it explicitly.
- **Base credentials.** botocore's chain as it is: environment variables, web identity
  (``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``: botocore calls
  ``AssumeRoleWithWebIdentity`` and renews the credentials itself), SSO, the container
  and instance roles. They are never copied into fixed keys: every client signs with the
  chain's own (renewing) credentials object. Inside a GitHub Actions job that may request
  OIDC tokens, with ``AWS_ROLE_ARN`` and no static keys, the web-identity credentials ask
  GitHub for a fresh token at every renewal (``pipeline.aws.web_identity``).
- **Role.** With ``role_arn`` set, credentials come from STS ``AssumeRole`` with a session
  name built from the actor (visible in CloudTrail), for at most 3600 s (the cap for role
  chaining, which is what CI does after OIDC). They are botocore
  ``RefreshableCredentials``: refreshed 15 minutes before they expire, so a deployment
  that bakes for hours never signs a request with expired credentials. When the base
  credentials already are a session of that role (``GetCallerIdentity`` answers
  ``arn:aws:sts::ACCT:assumed-role/NAME/...`` for ``arn:aws:iam::ACCT:role/.../NAME``,
  e.g. web identity or an OIDC step that assumed it), they are used as they are: a
  second AssumeRole would be a chained session, capped at one hour, renewed with
  credentials that may not renew. The choice is made on first use (one STS call).
- **Lifetime.** ``lifetime()`` says until when the credentials can sign requests
  (``pipeline.aws.credentials``); the factory refuses a deployment that may outlast it.
- **Retries.** botocore's ``standard`` mode with ``max_attempts`` in total (tests use 1-2).
  Non-idempotent calls (registering a task definition, creating a rule) use a client with
  a single attempt: their retry is the caller's check-then-act on the next action run.
- **Hooks.** ``on(event, handler)`` registers a botocore event handler on the session and on
  every client already made (tests use it to inject faults and record calls).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials

from pipeline.aws.credentials import Lifetime, is_same_role, lifetime_of
from pipeline.aws.errors import aws_errors
from pipeline.aws.web_identity import github_session

MAX_ROLE_SECONDS = 3600  # IAM caps chained role sessions at one hour
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """How to reach AWS for one environment. Timeouts are seconds."""

    region: str
    role_arn: str = ""
    actor: str = "pipeline"
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    role_seconds: int = MAX_ROLE_SECONDS
    endpoint_url: str = ""
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


def session_name(actor: str) -> str:
    """An STS ``RoleSessionName`` (2-64 of ``[\\w+=,.@-]``) that names who deploys."""
    name = re.sub(r"[^\w+=,.@-]", "-", f"pipeline-{actor}")
    return name[:64]


class AwsSession:
    """Clients for one environment's account and region. Thread-safe; clients are cached."""

    def __init__(
        self,
        settings: SessionSettings,
        *,
        base: boto3.Session | None = None,
        utc_now: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        name = session_name(settings.actor)
        github = (
            github_session(os.environ, region=settings.region, session_name=name, time_fetcher=utc_now)
            if base is None
            else None
        )
        self._base = base or github or boto3.Session(region_name=settings.region)
        self._utc_now = utc_now
        self._credentials: DeferredRefreshableCredentials | None = None
        self._resolved: boto3.Session | None = None
        self._caller: str | None = None
        self._clients: dict[tuple[str, bool], Any] = {}
        self._hooks: list[tuple[str, Callable[..., Any]]] = []
        self._lock = threading.Lock()

    @property
    def region(self) -> str:
        return self.settings.region

    @property
    def boto(self) -> boto3.Session:
        """The underlying boto3 session (carries the assumed-role credentials)."""
        with self._lock:
            return self._boto()

    @property
    def chained(self) -> bool:
        """True when the environment's role is assumed (not already the caller's)."""
        with self._lock:
            self._boto()
        return self._credentials is not None

    def lifetime(self) -> Lifetime:
        """Until when this session's credentials can sign requests (None: renewed)."""
        chained = self.chained
        seconds = max(900, min(self.settings.role_seconds, MAX_ROLE_SECONDS))
        credentials = self._base.get_credentials()
        return lifetime_of(credentials, self.utc_now(), chained=chained, role_seconds=seconds)

    def utc_now(self) -> datetime:
        """Now, on the clock credentials expire by (the wall clock unless one was given)."""
        return self._utc_now() if self._utc_now else datetime.now(tz=UTC)

    def client(self, service_name: str, *, retries: bool = True) -> Any:
        """A cached boto3 client. ``retries=False``: one attempt, for non-idempotent calls."""
        key = (service_name, retries)
        with self._lock:
            if key not in self._clients:
                client = self._boto().client(
                    service_name,  # type: ignore[call-overload]  # any service name
                    region_name=self.settings.region,
                    endpoint_url=self.settings.endpoint_url or None,
                    config=self._config(retries),
                )
                for event, handler in self._hooks:
                    client.meta.events.register(event, handler)
                self._clients[key] = client
            return self._clients[key]

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        """Register a botocore event handler (e.g. ``before-call``) on every client, now and later."""
        with self._lock:
            self._hooks.append((event, handler))
            for client in self._clients.values():
                client.meta.events.register(event, handler)

    def caller_arn(self) -> str:
        """The ARN that STS ``GetCallerIdentity`` reports for the caller's own credentials
        (before any role is assumed): who acts, as AWS proves it. Approvals and break-glass
        overrides match it against organisation members (``pipeline.identity``). Asked once."""
        if self._caller is None:
            with aws_errors("identify the caller (sts:GetCallerIdentity)"):
                self._caller = str(self._base_sts().get_caller_identity()["Arn"])
        return self._caller

    def credentials_expiry(self) -> datetime | None:
        """When the assumed-role credentials expire (None without a role or before first use)."""
        # botocore keeps no public accessor for the expiry of refreshable credentials
        expiry: datetime | None = getattr(self._credentials, "_expiry_time", None)
        return expiry

    def _config(self, retries: bool) -> Config:
        attempts = max(1, self.settings.max_attempts) if retries else 1
        return Config(
            region_name=self.settings.region,
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.read_timeout,
            max_pool_connections=16,
        )

    def _boto(self) -> boto3.Session:
        """The session clients come from, chosen on first use (call with the lock held)."""
        if self._resolved is None:
            role = self.settings.role_arn
            self._resolved = self._assumed() if role and not self._already(role) else self._base
        return self._resolved

    def _base_sts(self) -> Any:
        return self._base.client(
            "sts",
            region_name=self.settings.region,
            endpoint_url=self.settings.endpoint_url or None,
            config=self._config(True),
        )

    def _already(self, role_arn: str) -> bool:
        """True when the base credentials are a session of ``role_arn`` already."""
        return is_same_role(self.caller_arn(), role_arn)

    def _assumed(self) -> boto3.Session:
        """A boto3 session whose credentials come from (and are refreshed by) AssumeRole."""
        settings = self.settings
        sts: Any = self._base_sts()
        seconds = max(900, min(settings.role_seconds, MAX_ROLE_SECONDS))
        name = session_name(settings.actor)

        def refresh() -> dict[str, str]:
            with aws_errors(f"assume role {settings.role_arn} as {name}"):
                answer = sts.assume_role(
                    RoleArn=settings.role_arn, RoleSessionName=name, DurationSeconds=seconds
                )
            creds = answer["Credentials"]
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": creds["Expiration"].isoformat(),
            }

        extra: dict[str, Any] = {"time_fetcher": self._utc_now} if self._utc_now else {}
        self._credentials = DeferredRefreshableCredentials(
            refresh_using=refresh, method="sts-assume-role", **extra
        )
        core = botocore.session.Session()
        # botocore has no public setter for a session's credentials; aws-cli sets this too.
        core._credentials = self._credentials  # type: ignore[attr-defined]
        return boto3.Session(botocore_session=core, region_name=settings.region)
