"""The AWS platform: the only package that imports boto3.

Shared, at the top: ``session`` (AwsSession: region, assumed role, retries, client cache),
``errors`` (botocore exceptions -> toolkit errors), ``polling`` (waits on the injected
clock), ``settings`` (plain values, resource names, and the typed config -> settings
functions), ``alarms`` (firing CloudWatch alarms), ``factory`` (AwsFactory, the
PlatformFactory of ``platform: aws``), ``bootstrap`` (the one step type and executor of
``pipeline bootstrap``) and ``iam`` (``pipeline iam-policy``).

By concept:

- ``ecs``: task definitions, slot services and their facts, the Compute port, bootstrap;
- ``alb``: listener rules, the TrafficRouter port, CloudWatch ALB metrics (Metrics port);
- ``lambda_``: the Lambda API, versions and aliases (Compute), the alias router, metrics,
  concurrency, the HTTP API, packaging, readiness, stages, bootstrap;
- ``ecr``: the image registry and the OCI push;
- ``state``: the DynamoDB table, the StateStore and the LockManager.

Every module that calls AWS declares the IAM actions it needs in ``IAM_ACTIONS``; each
sub-package's ``permissions`` module declares their union, and ``iam`` assembles them per
service kind.
"""
