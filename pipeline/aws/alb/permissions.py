"""The IAM actions the ALB adapters call: listener rules, the router, CloudWatch metrics and alarms."""

from __future__ import annotations

from pipeline.aws import alarms
from pipeline.aws.alb import metrics, router, rules

IAM_ACTIONS: frozenset[str] = (
    rules.IAM_ACTIONS | router.IAM_ACTIONS | metrics.IAM_ACTIONS | alarms.IAM_ACTIONS
)
