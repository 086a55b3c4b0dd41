"""The IAM actions of the DynamoDB state table, store and lock."""

from __future__ import annotations

from pipeline.aws.state import lock, store, table

IAM_ACTIONS: frozenset[str] = table.IAM_ACTIONS | store.IAM_ACTIONS | lock.IAM_ACTIONS
