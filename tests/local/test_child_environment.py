"""Replicas and Lambda workers get only what they need from the deployer's environment.

The plane is started from an environment holding cloud keys and a GitHub token (as a
developer's shell or a CI job does); the processes it starts for a release see the
allow-list, their service's configured environment and what the platform sets, and none
of those secrets. Real plane, real processes, their environment read from /proc.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator

import psutil
import pytest

from pipeline.core.model import Slot
from pipeline.local.lambda_.control_client import LambdaControlClient
from pipeline.local.plane.lifecycle import PlaneInfo
from tests.local.support.plane import Project, make_adapters, running_plane, wait_until

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLE",
    "GITHUB_TOKEN": "ghp_exampleexampleexampleexample0000",
    "PIPELINE_TEST_DEPLOYER_ONLY": "x",
}

HANDLER = """\
import os

def handler(event, context):
    return dict(os.environ)
"""


@pytest.fixture
def secret_plane(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlaneInfo]:
    """The project's plane, started from an environment holding ``SECRETS``."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_TIME", "C")
    with running_plane(project) as info:
        yield info


def test_a_replica_sees_its_configured_environment_but_not_the_deployers_secrets(
    project: Project, secret_plane: PlaneInfo
) -> None:
    plane_env = psutil.Process(secret_plane.pid).environ()
    assert plane_env["AWS_SECRET_ACCESS_KEY"] == SECRETS["AWS_SECRET_ACCESS_KEY"]  # the premise
    adapters = make_adapters(project)
    commit = project.commit_launch("configured env", "python app.py",
                                   env={"GREETING": "hi", "DATABASE_URL": "sqlite:///orders.db"})
    release = adapters.registry.resolve("orders", commit)
    adapters.compute.provision(Slot.BLUE, release)
    wait_until(lambda: adapters.compute.health(Slot.BLUE, release).ready, 30, "blue ready")
    status = adapters.client.call("GET", "/v1/status")
    replicas = status["environments"]["dev"]["services"]["orders"]["slots"]["blue"]["replicas"]
    assert len(replicas) == 2
    for replica in replicas:
        env = psutil.Process(int(replica["pid"])).environ()
        assert not set(SECRETS) & set(env), sorted(set(SECRETS) & set(env))
        assert env["GREETING"] == "hi" and env["DATABASE_URL"] == "sqlite:///orders.db"  # configured
        assert env["PORT"] == str(replica["port"]) and env["PIPELINE_SLOT"] == "blue"  # the platform's
        assert env["PATH"] == plane_env["PATH"] and env["LC_TIME"] == "C"  # the allow-list
        assert env["PIPELINE_PLANE_ID"] == secret_plane.id  # how `local down` finds it


def test_a_lambda_worker_sees_its_configured_environment_but_not_the_deployers_secrets(
    secret_plane: PlaneInfo,
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER)
    client = LambdaControlClient(f"{secret_plane.url}/lambda/", token=secret_plane.token)
    published = client.publish("envcheck", buffer.getvalue(), "app.handler", 128, 5.0, {"TABLE": "orders"})
    version = str(published["version"])
    client.set_alias("envcheck", "live", {version: 1.0})
    result = client.call("POST", "functions/envcheck/invocations?qualifier=live", {})
    env = result["payload"]
    assert isinstance(env, dict), json.dumps(result)[:300]
    assert not set(SECRETS) & set(env), sorted(set(SECRETS) & set(env))
    assert env["TABLE"] == "orders" and env["AWS_LAMBDA_FUNCTION_NAME"] == "envcheck"
    assert "PATH" in env
