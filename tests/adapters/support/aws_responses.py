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


# --- Lambda ------------------------------------------------------------------------------


def lambda_configuration(function: str, version: str = "$LATEST", **changes: Any) -> dict[str, Any]:
    """A ``GetFunctionConfiguration`` / ``PublishVersion`` answer.

    https://docs.aws.amazon.com/lambda/latest/api/API_GetFunctionConfiguration.html#API_GetFunctionConfiguration_ResponseSyntax
    """
    base: dict[str, Any] = {
        "FunctionName": function,
        "FunctionArn": f"arn:aws:lambda:eu-west-1:123456789012:function:{function}:{version}",
        "Runtime": "python3.11",
        "Role": "arn:aws:iam::123456789012:role/pipeline-dev-lambda",
        "Handler": "app.handler",
        "CodeSize": 312,
        "Description": "",
        "Timeout": 10,
        "MemorySize": 128,
        "LastModified": "2026-12-07T15:00:00.000+0000",
        "CodeSha256": "",
        "Version": version,
        "Environment": {"Variables": {}},
        "RevisionId": "6f1e2c07-5b7a-4e0b-9a3d-1d2f3c4b5a60",
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
    }
    return {**base, **changes}


def update_in_progress(stub: Stubber, operation: str, arn: str, expected_params: dict[str, Any]) -> None:
    """Lambda's answer to a write while the function is still being updated.

    https://docs.aws.amazon.com/lambda/latest/api/API_PublishVersion.html#API_PublishVersion_Errors
    (ResourceConflictException, HTTP 409), message as Lambda words it
    (https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html).
    """
    stub.add_client_error(
        operation,
        service_error_code="ResourceConflictException",
        service_message="The operation cannot be performed at this time. "
        f"An update is in progress for resource: {arn}",
        http_status_code=409,
        expected_params=expected_params,
    )


def revision_mismatch(stub: Stubber, operation: str, expected_params: dict[str, Any]) -> None:
    """The answer to a write whose ``RevisionId`` is no longer current.

    https://docs.aws.amazon.com/lambda/latest/api/API_UpdateAlias.html#API_UpdateAlias_Errors
    (PreconditionFailedException, HTTP 412).
    """
    stub.add_client_error(
        operation,
        service_error_code="PreconditionFailedException",
        service_message="The RevisionId provided does not match the latest RevisionId for the Lambda "
        "function or alias. Call the GetFunction or the GetAlias API operation to retrieve the latest "
        "RevisionId for your resource.",
        http_status_code=412,
        expected_params=expected_params,
    )


def account_settings(limit: int, unreserved: int) -> dict[str, Any]:
    """A ``GetAccountSettings`` answer.

    https://docs.aws.amazon.com/lambda/latest/api/API_GetAccountSettings.html#API_GetAccountSettings_ResponseSyntax
    """
    return {
        "AccountLimit": {
            "TotalCodeSize": 80530636800,
            "CodeSizeUnzipped": 262144000,
            "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": limit,
            "UnreservedConcurrentExecutions": unreserved,
        },
        "AccountUsage": {"TotalCodeSize": 1024, "FunctionCount": 3},
    }


def unreserved_below_minimum(stub: Stubber, function: str, executions: int) -> None:
    """``PutFunctionConcurrency`` refused in an account with too little concurrency left.

    https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html; the error
    as AWS answers it (InvalidParameterValueException, HTTP 400), as reported in
    milliHQ/terraform-aws-next-js#251 and aws-samples/one-observability-demo#278 (the
    bracketed minimum is 100, or the account's whole limit when that is lower: 10, 50).
    """
    stub.add_client_error(
        "put_function_concurrency",
        service_error_code="InvalidParameterValueException",
        service_message="Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [100].",
        http_status_code=400,
        expected_params={"FunctionName": function, "ReservedConcurrentExecutions": executions},
    )


# --- CloudWatch ------------------------------------------------------------------------------


def metric_data(values: dict[str, list[float]], at: datetime, *, next_token: str = "") -> dict[str, Any]:
    """A GetMetricData answer: one result per query id, newest datapoint first.

    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
    (``StatusCode`` is ``PartialData`` when a ``NextToken`` follows).
    """
    answer: dict[str, Any] = {
        "MetricDataResults": [
            {
                "Id": ident,
                "Label": ident,
                "Timestamps": [at] * len(found),
                "Values": found,
                "StatusCode": "PartialData" if next_token else "Complete",
            }
            for ident, found in values.items()
        ],
        "Messages": [],
    }
    if next_token:
        answer["NextToken"] = next_token
    return answer


def cloudwatch_throttled(stub: Stubber, operation: str = "get_metric_data") -> None:
    """CloudWatch's answer past its request rate (``Throttling``, HTTP 400).

    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CommonErrors.html
    """
    stub.add_client_error(
        operation, service_error_code="Throttling", service_message="Rate exceeded", http_status_code=400
    )


def metric_alarm(name: str, state: str, reason: str = "") -> dict[str, Any]:
    """One entry of DescribeAlarms' ``MetricAlarms``.

    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricAlarm.html
    """
    return {
        "AlarmName": name,
        "AlarmArn": f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}",
        "StateValue": state,
        "StateReason": reason or f"Threshold Crossed: state {state}",
        "MetricName": "HTTPCode_Target_5XX_Count",
        "Namespace": "AWS/ApplicationELB",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 10.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }


def composite_alarm(name: str, state: str, rule: str, reason: str = "") -> dict[str, Any]:
    """One entry of DescribeAlarms' ``CompositeAlarms`` (returned only when ``AlarmTypes``
    asks for them). https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_CompositeAlarm.html
    """
    return {
        "AlarmName": name,
        "AlarmArn": f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}",
        "AlarmRule": rule,
        "StateValue": state,
        "StateReason": reason or f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name} transitioned",
        "ActionsEnabled": True,
    }


def describe_alarms(
    metric: list[dict[str, Any]], composite: tuple[dict[str, Any], ...] = (), *, next_token: str = ""
) -> dict[str, Any]:
    """A DescribeAlarms page (at most ``MaxRecords``, default 50, alarms; ``NextToken`` when
    more follow). https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
    """
    answer: dict[str, Any] = {"MetricAlarms": list(metric), "CompositeAlarms": list(composite)}
    if next_token:
        answer["NextToken"] = next_token
    return answer
