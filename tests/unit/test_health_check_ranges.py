"""Health checks: as fast as the local platform likes, within the ALB's ranges on AWS."""

from __future__ import annotations

import pytest

from pipeline.aws.settings import ecs_spec
from pipeline.config import load_project
from pipeline.core.errors import ConfigError
from tests.unit.support.project import WriteProject
from tests.unit.test_config import ORDERS, PIPELINE


def test_a_one_second_check_loads_for_the_local_platform_and_is_refused_for_an_alb(
    write_project: WriteProject,
) -> None:
    service = ORDERS.replace("port: 8080", "port: 8080\n      health_check: {interval: 1s, timeout: 500ms}")
    project = load_project(write_project(PIPELINE, {"orders": service}))
    orders = project.services["orders"]
    assert orders.ecs is not None and orders.ecs.health_check.interval == 1.0

    with pytest.raises(ConfigError) as refused:
        ecs_spec(orders)

    assert refused.value.problems == [
        "services/orders/service.yaml: ecs.health_check.interval: 1s is outside the ALB's range 5s-300s",
        "services/orders/service.yaml: ecs.health_check.timeout: 0.5s is outside the ALB's range 2s-120s",
    ]


def test_the_default_check_fits_the_alb(write_project: WriteProject) -> None:
    project = load_project(write_project(PIPELINE, {"orders": ORDERS}))
    spec = ecs_spec(project.services["orders"])
    assert (spec.health_check.interval, spec.health_check.timeout) == (10.0, 5.0)
