"""The AWS Distro for OpenTelemetry (ADOT) collector as a sidecar of an ECS task.

When an environment sets ``observability.otlp``, every task definition gets a second
container, ``aws-otel-collector`` (``ADOT_IMAGE``), that receives OTLP/HTTP from the service
on ``localhost:4318`` and exports the spans both to AWS X-Ray (``awsxray``: the task role
needs ``xray:PutTraceSegments`` and ``xray:PutTelemetryRecords``) and to the configured OTLP
endpoint (``otlphttp``). The service container is told where to send its spans
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``; its own values win). The collector
is not essential and the service does not wait for it (no ``dependsOn``): tracing never
keeps the service from starting or serving; spans sent before the collector listens are
lost.

Memory: the collector reserves ``COLLECTOR_MEMORY`` MiB and the service container's hard
limit is lowered by as much, so the containers still fit the task's memory (ECS refuses a
definition whose containers ask for more than the task has).

Collector configuration: ``AOT_CONFIG_CONTENT``, the ADOT image's documented way to pass a
configuration without a file (https://aws-otel.github.io/docs/setup/ecs).
"""

from __future__ import annotations

from typing import Any

ADOT_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.45.0"
COLLECTOR = "aws-otel-collector"
COLLECTOR_MEMORY = 64
LOCAL_OTLP = "http://localhost:4318"

_CONFIG = """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:4318
processors:
  batch/traces:
    timeout: 1s
exporters:
  awsxray:
    region: {region}
  otlphttp:
    endpoint: {endpoint}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch/traces]
      exporters: [awsxray, otlphttp]
"""


def collector_config(region: str, endpoint: str) -> str:
    """The collector's YAML configuration (``endpoint``: an OTLP/HTTP base URL)."""
    return _CONFIG.format(region=region, endpoint=endpoint.rstrip("/"))


def with_collector(definition: dict[str, Any], *, service: str, region: str, endpoint: str,
                   logging: dict[str, Any]) -> dict[str, Any]:
    """``definition`` (one service container) with the collector sidecar added. Pure."""
    app = dict(definition["containerDefinitions"][0])
    configured = {e["name"] for e in app.get("environment", [])}
    extra = [{"name": k, "value": v} for k, v in (("OTEL_EXPORTER_OTLP_ENDPOINT", LOCAL_OTLP),
                                                  ("OTEL_SERVICE_NAME", service)) if k not in configured]
    app["environment"] = sorted([*app.get("environment", []), *extra], key=lambda e: str(e["name"]))
    app["memory"] = max(COLLECTOR_MEMORY, int(app["memory"]) - COLLECTOR_MEMORY)
    options = dict(logging["options"], **{"awslogs-stream-prefix": f"{service}-otel"})
    sidecar = {
        "name": COLLECTOR,
        "image": ADOT_IMAGE,
        "essential": False,
        "memoryReservation": COLLECTOR_MEMORY,
        "environment": [{"name": "AOT_CONFIG_CONTENT", "value": collector_config(region, endpoint)}],
        "logConfiguration": {"logDriver": logging["logDriver"], "options": options},
    }
    return {**definition, "containerDefinitions": [app, sidecar]}
