"""On AWS, synthetic traffic for analysis goes to the environment's ``aws.url`` (the ALB's
public listener); without a URL there is none (moto behind the factory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.aws.factory import AwsFactory
from pipeline.aws.settings import AwsEnvironment
from pipeline.config import load_project
from pipeline.loadtest.smoke import SmokeRequest
from pipeline.loadtest.synthetic import HttpTrafficDriver
from pipeline.testing import FakeClock
from tests.adapters.support.ecs import bootstrap, orders_spec, write_project

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)


def _factory(root: Path, env: AwsEnvironment, clock: FakeClock, url: str | None) -> AwsFactory:
    write_project(root, env)
    if url is not None:
        config = root / "pipeline.yaml"
        config.write_text(config.read_text() + f"      url: {url}\n")
    return AwsFactory(load_project(root), clock, actor="tester", max_attempts=2)


@pytest.mark.parametrize("url", ["https://shop.example.test", None])
def test_synthetic_traffic_targets_the_environment_url_when_one_is_set(
    ecs_env: AwsEnvironment, tmp_path: Path, clock: FakeClock, url: str | None
) -> None:
    factory = _factory(tmp_path, ecs_env, clock, url)
    env = factory.project.environment("aws-test")
    bootstrap(factory.session(env), ecs_env, orders_spec(port=8000), clock)

    traffic = factory.platform(env, factory.project.service("orders")).traffic

    if url is None:
        assert traffic is None
        return
    assert isinstance(traffic, HttpTrafficDriver)
    assert traffic.base_url == url
    assert traffic.requests == (SmokeRequest("GET", "/orders"),)  # the service's read path
