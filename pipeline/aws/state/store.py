"""``DynamoStateStore``: deployment state, history, audit and signals in DynamoDB.

The same contract as the SQLite store (``pipeline.local.state.sqlite_store``), on the table laid
out in ``pipeline.aws.state.table``:

- ``load`` is a consistent read of the ``STATE`` item;
- ``commit`` writes the state and its records in one ``TransactWriteItems`` (all or
  nothing, at most 100 items; a longer list of records is written in several transactions,
  the state with the last one). The transaction carries a ``ClientRequestToken``, so
  botocore's retry of a call whose answer was lost is not applied twice;
- ``history`` queries the records newest first and returns the last ``limit`` oldest first;
- ``send`` puts one ``SIG#`` item; ``receive`` claims each queued signal with a
  conditional update (so two readers never both get it) and then deletes it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws.errors import aws_errors, error_code, translate
from pipeline.aws.session import AwsSession
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
from pipeline.core.model import ServiceRef
from pipeline.core.ports import Record
from pipeline.core.state import DeploymentState, Signal, signal_from_json, signal_to_json

IAM_ACTIONS: frozenset[str] = frozenset(
    {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:Scan",
    }
)
MAX_TRANSACTION = 100


class DynamoStateStore:
    """``StateStore`` on one DynamoDB table (see the module docstring)."""

    def __init__(self, session: AwsSession, table: str) -> None:
        self._session = session
        self.table = table

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

    def commit(self, state: DeploymentState | None, records: Sequence[Record]) -> None:
        """Save ``state`` (unless None) and append ``records``; atomic up to 100 items."""
        items = [_record_item(r) for r in records]
        if state is not None:
            items.append(_state_item(state))
        about = state.ref if state else (records[0].ref if records else "nothing")
        for start in range(0, len(items), MAX_TRANSACTION):
            chunk = items[start : start + MAX_TRANSACTION]
            with aws_errors(f"save the state of {about} in {self.table}"):
                if len(chunk) == 1:  # a single put is atomic and idempotent (fixed key)
                    self._db.put_item(TableName=self.table, Item=chunk[0])
                    continue
                self._db.transact_write_items(
                    TransactItems=[{"Put": {"TableName": self.table, "Item": item}} for item in chunk],
                    ClientRequestToken=uuid.uuid4().hex,
                )

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
        for item in self._query(ref, SIGNAL_PREFIX):
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
        with aws_errors(f"delete a taken signal from {self.table}"):
            self._db.delete_item(TableName=self.table, Key=key)
        return True

    def _query(self, ref: ServiceRef, prefix: str, *, newest_first: bool = False) -> Iterator[dict[str, Any]]:
        with aws_errors(f"read the {prefix.rstrip('#').lower()} items of {ref} from {self.table}"):
            pages = self._db.get_paginator("query").paginate(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":pk": s(deployment_pk(ref)), ":prefix": s(prefix)},
                ScanIndexForward=not newest_first,
                ConsistentRead=True,
            )
            for page in pages:
                yield from page["Items"]


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
