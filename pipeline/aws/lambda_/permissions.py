"""The IAM actions the Lambda adapters call: deploy (function API, concurrency, alias
router, metrics and alarms, HTTP API stages) and bootstrap (role, function, permissions)."""

from __future__ import annotations

from pipeline.aws import alarms
from pipeline.aws.lambda_ import api, bootstrap, concurrency, gateway, keepwarm, metrics, router, staging

# What a deployment calls (the deploy role's policy): no IAM writes, API Gateway reads only
DEPLOY_ACTIONS: frozenset[str] = (
    api.IAM_ACTIONS
    | concurrency.IAM_ACTIONS
    | router.IAM_ACTIONS
    | metrics.IAM_ACTIONS
    | alarms.IAM_ACTIONS
    | gateway.DEPLOY_ACTIONS
    | staging.IAM_ACTIONS
)
IAM_ACTIONS: frozenset[str] = (
    DEPLOY_ACTIONS | gateway.IAM_ACTIONS | bootstrap.IAM_ACTIONS | keepwarm.BOOTSTRAP_ACTIONS
)
