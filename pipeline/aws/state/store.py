"""``DynamoStateStore``: deployment state, history, audit and signals in DynamoDB.

The same contract as the SQLite store (``pipeline.local.state.sqlite_store``), on the table laid
out in ``pipeline.aws.state.table``:

- ``load`` is a consistent read of the ``STATE`` item;
- ``commit`` writes the state and its records in one ``TransactWriteItems`` (all or
  nothing, at most 100 items; a longer list of records is written in several transactions,
  the state with the last one). The transaction carries a ``ClientRequestToken``, so
  botocore's retry of a call whose answer was lost is not applied twice. A fenced commit
  (``fence``) adds a ``ConditionCheck`` on the lock item (owner and fencing token) to every
  transaction: once the lease was taken over, nothing is written and ``LeaseLost`` is raised;
- records are write-once: each is put on condition ``attribute_not_exists(pk)``, and the
  store never updates or deletes one (its IAM actions have no ``DeleteItem``);
- ``history`` queries the records newest first and returns the last ``limit`` oldest first;
- ``send`` puts one ``SIG#`` item; ``receive`` claims each unclaimed signal with a
  conditional update (so two readers never both get it); claimed signals stay, skipped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws.errors import aws_errors, error_code, translate
from pipeline.aws.session import AwsSession
from pipeline.aws.state.lock import DynamoLockManager
from pipeline.aws.state.table import (
    RECORD_PREFIX,
    SEQUENCE,
    SIGNAL_PREFIX,
    STATE_SK,
    deployment_pk,
    n,
    number,
    record_sk,
    s,
    signal_sk,
    text,
)
from pipeline.clock import SystemClock
from pipeline.core.errors import LeaseLost
from pipeline.core.model import ServiceRef
from pipeline.core.ports import Lease, Record
from pipeline.core.state import DeploymentState, Signal, signal_from_json, signal_to_json

IAM_ACTIONS: frozenset[str] = frozenset(
    {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",  # the fence of a commit (TransactWriteItems)
        "dynamodb:Query",
        "dynamodb:Scan",
    }
)
MAX_TRANSACTION = 100
_WRITE_ONCE = "attribute_not_exists(pk)"


class DynamoStateStore:
    """``StateStore`` on one DynamoDB table (see the module docstring)."""

    def __init__(self, session: AwsSession, table: str) -> None:
        self._session = session
        self.table = table
        self._locks = DynamoLockManager(session, table, SystemClock())  # fences only: no clock use

    @property
    def _db(self) -> Any:
        return self._session.client("dynamodb")

    def load(self, ref: ServiceRef) -> DeploymentState | None:
        """The latest committed state of ``ref``, or None when it was never deployed."""
        with aws_errors(f"load the state of {ref} from {self.table}"):
            item = self._db.get_item(
                TableName=self.table, Key=_key(deployment_pk(ref), STATE_SK), ConsistentRead=True
            ).get("Item")
        return DeploymentState.from_json(text(item, "state")) if item else None

    def commit(
        self, state: DeploymentState | None, records: Sequence[Record], *, fence: Lease | None = None
    ) -> None:
        """Save ``state`` (unless None) and append ``records``; atomic up to 100 items (99
        with a ``fence``, which every transaction checks). LeaseLost if the fence is lost."""
        puts = [_put(self.table, _record_item(r), _WRITE_ONCE) for r in records]
        if state is not None:
            puts.append(_put(self.table, _state_item(state)))
        about = state.ref if state else (records[0].ref if records else "nothing")
        doing = f"save the state of {about} in {self.table}"
        if fence is None and state is not None and not records:
            with aws_errors(doing):  # the state alone: one put is atomic and idempotent (fixed key)
                self._db.put_item(TableName=self.table, Item=_state_item(state))
            return
        check = [self._locks.fence_check(fence)] if fence is not None else []
        size = MAX_TRANSACTION - len(check)
        for start in range(0, len(puts), size):
            self._transact([*check, *puts[start : start + size]], fence, doing)

    def _transact(self, items: list[dict[str, Any]], fence: Lease | None, doing: str) -> None:
        try:
            self._db.transact_write_items(TransactItems=items, ClientRequestToken=uuid.uuid4().hex)
        except ClientError as exc:
            # One reason per item, in request order; the fence is item 0. See "CancellationReasons"
            # in https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
            reasons = exc.response.get("CancellationReasons") or []
            fenced = fence is not None and reasons and reasons[0].get("Code") == "ConditionalCheckFailed"
            if error_code(exc) == "TransactionCanceledException" and fenced:
                assert fence is not None
                holder = self._locks.holder_name(fence.key)
                why = f"lease token {fence.token} is no longer current"
                raise LeaseLost(fence.key, holder, why=why) from None
            raise translate(exc, doing) from exc
        except BotoCoreError as exc:
            raise translate(exc, doing) from exc

    def history(self, ref: ServiceRef, limit: int = 200) -> list[Record]:
        """The last ``limit`` records of ``ref`` (history and audit), oldest first."""
        found: list[Record] = []
        for item in self._query(ref, RECORD_PREFIX, newest_first=True):
            if len(found) >= limit:
                break
            found.append(_record_from_item(item))
        return list(reversed(found))

    def records(self, ref: ServiceRef, kind: str | None = None, action: str | None = None) -> list[Record]:
        """Every record of ``ref``, oldest first, optionally only of one ``kind`` and/or ``action``."""
        every = [_record_from_item(item) for item in self._query(ref, RECORD_PREFIX)]
        return [r for r in every if kind in (None, r.kind) and action in (None, r.action)]

    def deployments(self) -> list[DeploymentState]:
        """The latest state of every (service, environment): a filtered scan of the table."""
        states: list[DeploymentState] = []
        with aws_errors(f"list the deployments in {self.table}"):
            pages = self._db.get_paginator("scan").paginate(
                TableName=self.table,
                FilterExpression="sk = :state",
                ExpressionAttributeValues={":state": s(STATE_SK)},
                ConsistentRead=True,
            )
            for page in pages:
                states += [DeploymentState.from_json(text(item, "state")) for item in page["Items"]]
        return sorted(states, key=lambda st: (st.ref.service, st.ref.environment))

    def send(self, ref: ServiceRef, signal: Signal) -> None:
        """Queue ``signal`` for the engine running ``ref``. Each call queues one."""
        item = {**_key(deployment_pk(ref), signal_sk(SEQUENCE.next())), "signal": s(signal_to_json(signal))}
        with aws_errors(f"queue a signal for {ref} in {self.table}"):
            self._db.put_item(TableName=self.table, Item=item)

    def receive(self, ref: ServiceRef) -> list[Signal]:
        """Take the queued signals of ``ref``, oldest first; each is returned to one caller once."""
        claim = uuid.uuid4().hex
        taken: list[Signal] = []
        for item in self._query(ref, SIGNAL_PREFIX, unclaimed=True):
            if self._claim(item, claim):
                taken.append(signal_from_json(text(item, "signal")))
        return taken

    def _claim(self, item: dict[str, Any], claim: str) -> bool:
        key = {"pk": item["pk"], "sk": item["sk"]}
        try:
            self._db.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET claimed_by = :me",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(claimed_by) OR claimed_by = :me)",
                ExpressionAttributeValues={":me": s(claim)},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False  # another reader took it
            raise translate(exc, f"take a signal from {self.table}") from exc
        return True

    def _query(
        self, ref: ServiceRef, prefix: str, *, newest_first: bool = False, unclaimed: bool = False
    ) -> Iterator[dict[str, Any]]:
        only = {"FilterExpression": "attribute_not_exists(claimed_by)"} if unclaimed else {}
        with aws_errors(f"read the {prefix.rstrip('#').lower()} items of {ref} from {self.table}"):
            pages = self._db.get_paginator("query").paginate(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":pk": s(deployment_pk(ref)), ":prefix": s(prefix)},
                ScanIndexForward=not newest_first,
                ConsistentRead=True,
                **only,
            )
            for page in pages:
                yield from page["Items"]


def _put(table: str, item: dict[str, Any], condition: str = "") -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": table, "Item": item}
    if condition:
        put["ConditionExpression"] = condition
    return {"Put": put}


def _key(pk: str, sk: str) -> dict[str, dict[str, str]]:
    return {"pk": s(pk), "sk": s(sk)}


def _state_item(state: DeploymentState) -> dict[str, Any]:
    ref = state.ref
    return {
        **_key(deployment_pk(ref), STATE_SK),
        "service": s(ref.service),
        "environment": s(ref.environment),
        "deployment": s(state.id),
        "phase": s(state.phase.value),
        "updated_at": n(state.updated_at),
        "state": s(state.to_json()),
    }


def _record_item(r: Record) -> dict[str, Any]:
    fields = {
        "service": r.ref.service,
        "environment": r.ref.environment,
        "deployment": r.deployment,
        "actor": r.actor,
        "action": r.action,
        "kind": r.kind,
        "phase": r.phase,
        "version": r.version,
        "digest": r.digest,
        "detail": r.detail,
        "data": json.dumps(r.data, sort_keys=True),
    }
    key = _key(deployment_pk(r.ref), record_sk(r.ts, SEQUENCE.next()))
    return {**key, "ts": n(r.ts), **{name: s(value) for name, value in fields.items()}}


def _record_from_item(item: dict[str, Any]) -> Record:
    return Record(
        ts=number(item, "ts"),
        ref=ServiceRef(text(item, "service"), text(item, "environment")),
        deployment=text(item, "deployment"),
        actor=text(item, "actor"),
        action=text(item, "action"),
        phase=text(item, "phase"),
        version=text(item, "version"),
        digest=text(item, "digest"),
        detail=text(item, "detail"),
        data=json.loads(text(item, "data", "{}")),
        kind=text(item, "kind", "history"),
    )
