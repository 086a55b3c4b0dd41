"""ECS tasks export their spans through an ADOT collector sidecar when ``observability.otlp``
is set: the rendered definition, registered in moto and described back, is the same
definition (provisioning again registers nothing), and it differs from one without."""

from __future__ import annotations

from dataclasses import replace

import boto3
import yaml

from pipeline.aws.ecs.collector import ADOT_IMAGE, COLLECTOR, COLLECTOR_MEMORY
from pipeline.aws.ecs.taskdef import render, same_definition
from pipeline.aws.settings import AwsEnvironment
from tests.adapters.conftest import REGION
from tests.adapters.support.ecs import ACCOUNT, orders_spec

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)

IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orders@sha256:" + "a" * 64
COLLECTOR_URL = "https://collector.example.com:4318"


def test_the_sidecar_receives_on_localhost_and_exports_to_xray_and_the_endpoint(
        ecs_env: AwsEnvironment) -> None:
    env = replace(ecs_env, otlp_endpoint=COLLECTOR_URL)
    spec = orders_spec(environment=(("LOG_LEVEL", "info"), ("OTEL_SERVICE_NAME", "orders-api")))
    definition = render(env, spec, IMAGE)

    app, sidecar = definition["containerDefinitions"]
    assert (sidecar["name"], sidecar["image"], sidecar["essential"]) == (COLLECTOR, ADOT_IMAGE, False)
    variables = {e["name"]: e["value"] for e in app["environment"]}
    assert variables["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4318"
    assert variables["OTEL_SERVICE_NAME"] == "orders-api"  # the service's own setting wins
    assert "dependsOn" not in app  # the service never waits for its tracing
    assert app["memory"] + sidecar["memoryReservation"] == int(definition["memory"])
    assert sidecar["memoryReservation"] == COLLECTOR_MEMORY
    config = yaml.safe_load(sidecar["environment"][0]["value"])
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "127.0.0.1:4318"
    assert config["exporters"] == {"awsxray": {"region": REGION}, "otlphttp": {"endpoint": COLLECTOR_URL}}
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["awsxray", "otlphttp"]
    assert sidecar["logConfiguration"]["options"]["awslogs-stream-prefix"] == "orders-otel"


def test_without_an_endpoint_the_task_has_one_container(ecs_env: AwsEnvironment) -> None:
    [app] = render(ecs_env, orders_spec(), IMAGE)["containerDefinitions"]
    assert "dependsOn" not in app
    assert not any(e["name"].startswith("OTEL_") for e in app.get("environment", []))


def test_a_registered_definition_with_the_sidecar_is_recognised_and_removing_it_is_a_change(
    ecs_env: AwsEnvironment, aws: str
) -> None:
    traced = render(replace(ecs_env, otlp_endpoint=COLLECTOR_URL), orders_spec(), IMAGE)
    ecs = boto3.client("ecs", region_name=REGION)
    arn = ecs.register_task_definition(**traced)["taskDefinition"]["taskDefinitionArn"]
    described = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]

    assert same_definition(described, traced)
    assert not same_definition(described, render(ecs_env, orders_spec(), IMAGE))
