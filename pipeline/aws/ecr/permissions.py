"""The IAM actions of the ECR registry (repositories, image push and resolve)."""

from __future__ import annotations

from pipeline.aws.ecr import registry

IAM_ACTIONS: frozenset[str] = registry.IAM_ACTIONS
