"""Realistic AWS answers for ``botocore.stub.Stubber`` contract tests, for what the test
endpoint cannot produce. Each builder cites the AWS documentation its shape comes from."""

from __future__ import annotations

from datetime import datetime
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


# --- ECS and target health -----------------------------------------------------------------


def ecs_deployment(
    task_definition: str,
    *,
    status: str,
    rollout: str,
    desired: int,
    running: int,
    failed: int = 0,
    reason: str = "",
) -> dict[str, Any]:
    """One entry of a service's ``deployments`` (rolling update with the circuit breaker).

    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html;
    ``rolloutState`` FAILED with ``rolloutStateReason`` is what the circuit breaker sets:
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html
    """
    entry: dict[str, Any] = {
        "id": f"ecs-svc/{status.lower()}-{task_definition.rsplit(':', 1)[-1]}",
        "status": status,
        "taskDefinition": task_definition,
        "desiredCount": desired,
        "pendingCount": 0,
        "runningCount": running,
        "failedTasks": failed,
        "launchType": "FARGATE",
        "rolloutState": rollout,
    }
    if reason:
        entry["rolloutStateReason"] = reason
    return entry


def ecs_service(
    name: str,
    cluster_arn: str,
    task_definition: str,
    deployments: list[dict[str, Any]],
    *,
    desired: int,
    running: int,
    events: tuple[str, ...] = (),
    grace: int = 60,
) -> dict[str, Any]:
    """A DescribeServices answer for one ACTIVE service.

    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeServices.html
    """
    region_account = cluster_arn.split(":cluster/", maxsplit=1)[0]
    return {
        "services": [
            {
                "serviceArn": f"{region_account}:service/{cluster_arn.rsplit('/', 1)[-1]}/{name}",
                "serviceName": name,
                "clusterArn": cluster_arn,
                "status": "ACTIVE",
                "desiredCount": desired,
                "runningCount": running,
                "pendingCount": 0,
                "launchType": "FARGATE",
                "taskDefinition": task_definition,
                "healthCheckGracePeriodSeconds": grace,
                "deploymentConfiguration": {
                    "deploymentCircuitBreaker": {"enable": True, "rollback": False},
                    "maximumPercent": 200,
                    "minimumHealthyPercent": 100,
                },
                "deployments": deployments,
                "events": [{"id": f"e{i}", "message": m} for i, m in enumerate(events)],
            }
        ],
        "failures": [],
    }


def target_health(*targets: tuple[str, int, str, str, str]) -> dict[str, Any]:
    """A DescribeTargetHealth answer: (ip, port, state, reason, description) per target.

    https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html
    (states ``initial``, ``healthy``, ``unhealthy``, ``draining``, ...; reason codes such as
    ``Elb.RegistrationInProgress``, ``Target.ResponseCodeMismatch``,
    ``Target.DeregistrationInProgress``)
    """
    descriptions = []
    for ip, port, state, reason, description in targets:
        health: dict[str, Any] = {"State": state}
        if reason:
            health["Reason"] = reason
        if description:
            health["Description"] = description
        descriptions.append(
            {"Target": {"Id": ip, "Port": port}, "HealthCheckPort": str(port), "TargetHealth": health}
        )
    return {"TargetHealthDescriptions": descriptions}


def stopped_task(
    cluster_arn: str,
    task_id: str,
    task_definition: str,
    service: str,
    *,
    stopped_reason: str,
    container: str,
    exit_code: int | None,
    container_reason: str = "",
    stopped_at: str = "2026-12-07T10:00:00Z",
) -> dict[str, Any]:
    """One STOPPED task of a service, as DescribeTasks returns it.

    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html and
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-errors.html
    (``stoppedReason`` such as "Essential container in task exited", ``stopCode``
    ``EssentialContainerExited``; a container's ``exitCode`` and ``reason``)
    """
    prefix = cluster_arn.split(":cluster/", maxsplit=1)[0]
    cluster = cluster_arn.rsplit("/", 1)[-1]
    task_arn = f"{prefix}:task/{cluster}/{task_id}"
    box: dict[str, Any] = {"name": container, "lastStatus": "STOPPED", "taskArn": task_arn}
    if exit_code is not None:
        box["exitCode"] = exit_code
    if container_reason:
        box["reason"] = container_reason
    return {
        "taskArn": task_arn,
        "clusterArn": cluster_arn,
        "taskDefinitionArn": task_definition,
        "group": f"service:{service}",
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stopCode": "EssentialContainerExited",
        "stoppedReason": stopped_reason,
        "stoppedAt": datetime.fromisoformat(stopped_at.replace("Z", "+00:00")),
        "containers": [box],
        "launchType": "FARGATE",
    }
