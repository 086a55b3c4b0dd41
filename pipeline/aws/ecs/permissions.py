"""The IAM actions the ECS adapters call: deploy (compute, slot facts) and bootstrap."""

from __future__ import annotations

from pipeline.aws.ecs import bootstrap, compute, slot

# What a deployment calls (the deploy role's policy); bootstrap's creations are on top
DEPLOY_ACTIONS: frozenset[str] = compute.IAM_ACTIONS | slot.IAM_ACTIONS
IAM_ACTIONS: frozenset[str] = DEPLOY_ACTIONS | bootstrap.IAM_ACTIONS
