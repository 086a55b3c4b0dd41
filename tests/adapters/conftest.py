"""Shared fixtures for the AWS adapter tier: one moto server over real HTTP per session.

Tests get a clean account (``POST /moto-api/reset``) and the endpoint in
``AWS_ENDPOINT_URL``; boto3 clients made by the adapters find it from there.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import pytest
import requests

from pipeline.testing import FakeClock
from tests.adapters.support import realism

REGION = "eu-west-1"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = realism.AtomicDynamoMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    yield url
    server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A reset moto account; returns the endpoint URL."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    os.environ.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "true")
    yield moto_server


@pytest.fixture(scope="session", autouse=True)
def _realism_everywhere() -> Iterator[None]:
    """Every botocore session of this tier gets the realism layer (support/realism.py)."""
    undo = realism.patch_sessions()
    yield
    undo()


@pytest.fixture(autouse=True)
def realism_state(request: pytest.FixtureRequest) -> realism.RealismState:
    """This test's realism state, on the test's fake clock when it has one."""
    now = time.time
    if "clock" in request.fixturenames:
        clock = request.getfixturevalue("clock")
        if isinstance(clock, FakeClock):
            now = clock.now
    return realism.reset(now, seed=request.node.nodeid)
