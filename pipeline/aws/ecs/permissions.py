"""The IAM actions the ECS adapters call: deploy (compute, slot facts) and bootstrap."""

from __future__ import annotations

from pipeline.aws.ecs import bootstrap, compute, slot

IAM_ACTIONS: frozenset[str] = compute.IAM_ACTIONS | slot.IAM_ACTIONS | bootstrap.IAM_ACTIONS
