"""The IAM actions of the DynamoDB state table, store and lock.

No ``dynamodb:DeleteItem``: audit records are write-once, so the deploy role must not be
able to delete them, and nothing in the state needs deleting. A lock is released by
emptying its owner (``UpdateItem``; the item keeps its fencing token), and a taken
operator signal is marked claimed (``UpdateItem``), not deleted. Fenced commits are
``TransactWriteItems`` whose items IAM authorises one by one: ``PutItem`` for each put and
``ConditionCheckItem`` for the lease check.
"""

from __future__ import annotations

from pipeline.aws.state import lock, store, table

IAM_ACTIONS: frozenset[str] = table.IAM_ACTIONS | store.IAM_ACTIONS | lock.IAM_ACTIONS
