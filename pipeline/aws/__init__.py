"""The AWS platform: the only package that imports boto3.

Shared: ``session`` (AwsSession: region, assumed role, retries, client cache), ``errors``
(botocore exceptions -> toolkit errors), ``polling`` (waits on the injected clock),
``settings`` (plain values and resource names), ``config_glue`` (config -> settings),
``factory`` (AwsFactory, the PlatformFactory of ``platform: aws``), ``bootstrap`` and
``iam`` (``pipeline bootstrap`` / ``pipeline iam-policy``).

ECS: ``ecs_taskdef``, ``ecs_slot``, ``ecs_compute`` (Compute), ``alb_rules``,
``alb_router`` (TrafficRouter), ``cloudwatch_metrics`` (Metrics). State:
``dynamo_table``, ``dynamo_store`` (StateStore), ``dynamo_lock`` (LockManager).
ECR: ``ecr``, ``ecr_*``. Lambda: ``lambda_*``.

Every module that calls AWS declares the IAM actions it needs in ``IAM_ACTIONS``.
"""
