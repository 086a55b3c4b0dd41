"""Credentials that last the deployment: web identity, no needless role chaining, early refusal.

Against moto's STS over HTTP (it implements ``AssumeRoleWithWebIdentity`` and answers
``GetCallerIdentity`` with the assumed-role ARN of the credentials used), and a Stubber for
the ``ExpiredToken`` answer AWS gives credentials past their expiry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pipeline.app import App
from pipeline.aws.credentials import check_fits, deployment_span, is_same_role
from pipeline.aws.errors import aws_errors
from pipeline.aws.factory import AwsFactory
from pipeline.aws.session import AwsSession, SessionSettings
from pipeline.aws.settings import AwsEnvironment
from pipeline.config import load_project
from pipeline.core.analysis import AnalysisSpec
from pipeline.core.errors import PlatformError, UsageError
from pipeline.core.plan import Strategy
from pipeline.core.state import Timeouts
from pipeline.core.steps import Analyze, Approve, Pause, SetWeight
from pipeline.testing import FakeClock
from tests.adapters.conftest import REGION
from tests.adapters.support.aws_responses import expired_token_error
from tests.adapters.support.ecs import write_project

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/pipeline-deploy"
# A GitHub Actions OIDC token's shape (header.payload.signature); moto does not verify it.
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOm9yZy9yZXBvOmVudmlyb25tZW50OnByb2QifQ.c2ln"


class Now:
    """A settable UTC clock for botocore's renewal decisions."""

    def __init__(self) -> None:
        self.value = datetime.now(tz=UTC)

    def __call__(self) -> datetime:
        return self.value


def calls_to(base: boto3.Session, operation: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    event = f"provide-client-params.sts.{operation}"
    base.events.register(event, lambda params, **_: seen.append(dict(params)))
    return seen


@pytest.fixture
def web_identity(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment of a CI job with a web identity token and no static keys."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    token = tmp_path / "web-identity-token"
    token.write_text(TOKEN)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE)
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "github-actions")
    return token


def test_web_identity_credentials_are_used_as_botocore_renews_them_unchained(web_identity: Path) -> None:
    base = boto3.Session(region_name=REGION)
    web, assume = calls_to(base, "AssumeRoleWithWebIdentity"), calls_to(base, "AssumeRole")
    session = AwsSession(SessionSettings(REGION, role_arn=ROLE, actor="ci"), base=base)

    sts = session.client("sts")
    identity = sts.get_caller_identity()

    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/pipeline-deploy/github-actions"
    assert [call["WebIdentityToken"] for call in web] == [TOKEN]
    assert assume == []  # already the role: a chained session would be capped at one hour
    # Clients sign with botocore's own web-identity credentials object, which renews
    # itself, not with a frozen copy of its keys (botocore keeps the signer's credentials
    # private; this is the object every request is signed with).
    signing = sts._request_signer._credentials
    assert signing.method == "assume-role-with-web-identity"
    assert signing is base.get_credentials()
    assert session.lifetime().expires_at is None


def test_web_identity_for_another_role_is_chained_and_still_renews(web_identity: Path) -> None:
    target = f"arn:aws:iam::{ACCOUNT}:role/pipeline-prod"
    base = boto3.Session(region_name=REGION)
    assume = calls_to(base, "AssumeRole")
    session = AwsSession(SessionSettings(REGION, role_arn=target, actor="ci"), base=base)

    arn = session.client("sts").get_caller_identity()["Arn"]

    assert arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/pipeline-prod/pipeline-ci"
    assert len(assume) == 1
    assert session.chained and session.lifetime().expires_at is None  # the base renews: no limit


class GitHubTokens:
    """GitHub's job ID-token endpoint, over real HTTP: a new token for every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (path with query, Authorization)
        tokens = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                tokens.requests.append((self.path, self.headers.get("Authorization", "")))
                body = json.dumps({"value": f"{TOKEN}{len(tokens.requests)}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/_apis/token?api-version=2.0"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def github_oidc(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubTokens]:
    """A GitHub Actions job with ``permissions: id-token: write`` and AWS_ROLE_ARN, no keys."""
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE")
    for name in keys:
        monkeypatch.delenv(name, raising=False)
    tokens = GitHubTokens()
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", tokens.url)
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "job-request-token")
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE)
    yield tokens
    tokens.server.shutdown()


def test_in_github_actions_each_renewal_asks_github_for_a_fresh_token(github_oidc: GitHubTokens) -> None:
    now = Now()
    session = AwsSession(SessionSettings(REGION, role_arn=ROLE, actor="ci"), utc_now=now)
    sts = session.client("sts")
    web = calls_to(session.boto, "AssumeRoleWithWebIdentity")

    arn = sts.get_caller_identity()["Arn"]

    assert arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/pipeline-deploy/pipeline-ci"
    assert not session.chained and session.lifetime().expires_at is None
    path, authorization = github_oidc.requests[0]
    assert "audience=sts.amazonaws.com" in path and authorization == "bearer job-request-token"
    asked = len(github_oidc.requests)

    now.value += timedelta(minutes=55)  # a GitHub token lasts minutes; the role session an hour
    sts.get_caller_identity()

    assert len(github_oidc.requests) > asked  # renewed with a token GitHub just issued
    assert web and web[-1]["WebIdentityToken"] == f"{TOKEN}{len(github_oidc.requests)}"


def test_skips_assume_role_when_the_caller_already_is_the_role_even_with_a_path(aws: str) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/teams/pipeline-deploy"
    issued = boto3.client("sts", region_name=REGION).assume_role(RoleArn=role, RoleSessionName="oidc-step")
    creds = issued["Credentials"]
    base = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )
    assume = calls_to(base, "AssumeRole")
    session = AwsSession(SessionSettings(REGION, role_arn=role, actor="ci"), base=base)

    arn = session.client("sts").get_caller_identity()["Arn"]

    assert arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/pipeline-deploy/oidc-step"
    assert assume == [] and not session.chained


@pytest.mark.parametrize(
    ("caller", "same"),
    [
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/pipeline-deploy/s", True),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/pipeline-deploy-2/s", False),
        ("arn:aws:sts::999999999999:assumed-role/pipeline-deploy/s", False),
        (f"arn:aws-cn:sts::{ACCOUNT}:assumed-role/pipeline-deploy/s", False),
        (f"arn:aws:iam::{ACCOUNT}:user/pipeline-deploy", False),
        ("not an arn", False),
    ],
)
def test_a_caller_is_the_role_only_as_a_session_of_that_role_in_that_account(caller: str, same: bool) -> None:
    assert is_same_role(caller, f"arn:aws:iam::{ACCOUNT}:role/ci/pipeline-deploy") is same


def test_expired_token_says_the_credentials_expired_not_that_a_permission_is_missing() -> None:
    ecs = boto3.client("ecs", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(ecs) as stub:
        expired_token_error(stub, "list_clusters")
        with pytest.raises(PlatformError) as caught, aws_errors("list the clusters"):
            ecs.list_clusters()

    assert "ExpiredToken" in caught.value.message and "expired" in caught.value.message
    assert "credentials expired" in caught.value.hint and "AWS_WEB_IDENTITY_TOKEN_FILE" in caught.value.hint
    assert "lacks this permission" not in caught.value.hint


# --- the lifetime a deployment needs -------------------------------------------------


def test_the_span_adds_every_deadline_and_wait_of_the_strategy() -> None:
    strategy = Strategy(
        steps=(SetWeight(10), Pause(600), Analyze(), Approve(), SetWeight(50), Pause(None)),
        timeouts=Timeouts(ready=300, verify=60, stage=900, hold=1800),
        keep_previous=120,
        drain_seconds=30,
    )
    span, parts = deployment_span(strategy)

    analysis = strategy.analysis.window_seconds + strategy.analysis.interval_seconds
    assert span == 300 + 60 * 3 + 600 + analysis + 1800 * 2 + 30 + 120
    assert "holds for `pipeline continue` 60m" in parts and "pauses 10m" in parts


def test_the_span_counts_the_metrics_lag_and_a_pause_on_an_inconclusive_analysis() -> None:
    analysis = AnalysisSpec(window_seconds=120, interval_seconds=30, lag_seconds=120, on_inconclusive="pause")
    strategy = Strategy(steps=(SetWeight(10), Analyze()), analysis=analysis, timeouts=Timeouts(hold=3600))

    span, parts = deployment_span(strategy)

    assert "analyses 5m" in parts  # window 120 s + lag 120 s + interval 30 s, rounded up
    assert "a hold on an inconclusive analysis 60m" in parts
    assert span == Timeouts().ready + 2 * Timeouts().verify + 270 + 3600


def test_fixed_credentials_with_a_stated_expiry_refuse_a_longer_deployment(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(tz=UTC)
    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", (now + timedelta(minutes=40)).isoformat())
    session = AwsSession(SessionSettings(REGION))
    long_bake = Strategy(steps=(SetWeight(100), Pause(3600)))

    with pytest.raises(UsageError) as caught:
        check_fits(session.lifetime(), long_bake, session.utc_now(), environment="prod")

    message = caught.value.message
    assert "a deployment to prod may take up to 67m (ready 5m, weight checks 2m, pauses 60m)" in message
    assert "credentials last 39m: fixed env credentials expiring at" in message
    assert "(AWS_CREDENTIAL_EXPIRATION)" in message
    assert "AWS_WEB_IDENTITY_TOKEN_FILE" in caught.value.hint
    check_fits(session.lifetime(), Strategy(steps=(SetWeight(100), Pause(600))), now, environment="prod")


def test_long_term_keys_and_renewed_credentials_fit_any_deployment(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    session = AwsSession(SessionSettings(REGION))
    days = Strategy(steps=(Approve(),), timeouts=Timeouts(hold=7 * 86400))

    assert session.lifetime().expires_at is None
    check_fits(session.lifetime(), days, session.utc_now(), environment="prod")


@pytest.fixture
def factory(ecs_env: AwsEnvironment, tmp_path: Path, clock: FakeClock) -> AwsFactory:
    write_project(tmp_path, ecs_env)
    return AwsFactory(load_project(tmp_path), clock, actor="tester", max_attempts=2)


def test_deploying_refuses_a_strategy_that_outlasts_chained_fixed_credentials(factory: AwsFactory) -> None:
    # The ``aws`` fixture's keys are fixed temporary credentials (a session token, no
    # stated expiry), as an OIDC step leaves them; the project assumes a role with them.
    env, service = factory.project.environment("aws-test"), factory.project.service("orders")
    shaped = App(factory.project.root, factory.clock).strategy("orders", "aws-test")
    waits_for_a_person = replace(shaped, steps=(*shaped.steps, Approve()))

    with pytest.raises(UsageError) as caught:
        factory.strategy(env, service, waits_for_a_person)

    assert "a deployment to aws-test may take up to" in caught.value.message
    assert "holds for `pipeline continue` 24h" in caught.value.message
    assert "a role chained from fixed temporary env credentials" in caught.value.message
    assert factory.session(env).chained
