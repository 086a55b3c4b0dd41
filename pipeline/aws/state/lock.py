"""``DynamoLockManager``: one lease per (service, environment) with conditional writes.

The lease is the item ``LOCK#<service>@<env>`` / ``LOCK`` holding ``owner``,
``acquired_at`` and ``expires_at`` (epoch seconds from the injected clock). Every decision
is one conditional write, so processes racing for a free lock cannot both win:

- ``acquire`` puts the lease on condition ``attribute_not_exists(pk) OR expires_at <= now``.
  When the condition fails DynamoDB returns the holder's item: if that is the caller, the
  lease is renewed (keeping ``acquired_at``; this also makes a retried acquire whose first
  answer was lost succeed), otherwise ``LockHeldError`` names the holder.
  A lease held by a crashed process of this host (owner ``name@HOST:PID`` with no such
  PID) is taken over at once, on condition that it is still that exact lease;
- ``renew`` extends on condition ``owner = me``;
- ``release`` deletes on condition ``owner = me`` (idempotent, never frees another's lease).

Clocks of different machines must agree to within a small fraction of the lease: a lease
expires by the *taker's* clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws.errors import aws_errors, error_code, translate
from pipeline.aws.session import AwsSession
from pipeline.aws.state.table import LOCK_SK, lock_pk, n, number, s, text
from pipeline.core.errors import LockHeldError
from pipeline.core.model import ServiceRef
from pipeline.core.ports import Clock, Lease
from pipeline.owners import crashed_on_this_host

IAM_ACTIONS: frozenset[str] = frozenset(
    {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
)

_FAILED = "ConditionalCheckFailedException"


class DynamoLockManager:
    """``LockManager`` on the environment's table; safe across threads, processes and hosts."""

    def __init__(self, session: AwsSession, table: str, clock: Clock) -> None:
        self._session = session
        self.table = table
        self.clock = clock

    @property
    def _db(self) -> Any:
        return self._session.client("dynamodb")

    def acquire(self, ref: ServiceRef, owner: str, ttl: float) -> Lease:
        """Take the lock of ``ref`` for ``ttl`` seconds, or raise LockHeldError naming the holder."""
        now = self.clock.now()
        lease = Lease(ref.key, owner, now, now + ttl)
        held = self._put(lease, "attribute_not_exists(pk) OR expires_at <= :now", {":now": n(now)})
        if held is None:
            return lease
        if held.owner == owner:  # ours already: extend it, keep when it was first taken
            return self.renew(held, ttl)
        if crashed_on_this_host(held.owner):
            condition = "#owner = :old AND expires_at = :expires"
            values = {":old": s(held.owner), ":expires": n(held.expires_at)}
            again = self._put(lease, condition, values)
            if again is None:
                return lease
            held = again
        raise LockHeldError(held.key, held.owner, held.acquired_at, held.expires_at)

    def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend ``lease`` to ``now + ttl`` if ``lease.owner`` still holds it (even expired but
        not taken over). Raises LockHeldError naming the holder ("nobody" if released)."""
        expires = self.clock.now() + ttl
        try:
            with _conditional():
                answer = self._db.update_item(
                    TableName=self.table,
                    Key=_key(lease.key),
                    UpdateExpression="SET expires_at = :expires",
                    ConditionExpression="#owner = :me",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":expires": n(expires), ":me": s(lease.owner)},
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except _Lost as lost:
            holder = lost.lease
            if holder is None:
                raise LockHeldError(lease.key, "nobody", lease.acquired_at, lease.expires_at) from None
            raise LockHeldError(holder.key, holder.owner, holder.acquired_at, holder.expires_at) from None
        return _lease(answer["Attributes"])

    def release(self, lease: Lease) -> None:
        """Give the lock up if ``lease.owner`` holds it. Idempotent."""
        try:
            with _conditional():
                self._db.delete_item(
                    TableName=self.table,
                    Key=_key(lease.key),
                    ConditionExpression="#owner = :me",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues={":me": s(lease.owner)},
                )
        except _Lost:
            return

    def holder(self, ref: ServiceRef) -> Lease | None:
        """The current unexpired lease of ``ref``, or None."""
        with aws_errors(f"read the lock of {ref} in {self.table}"):
            item = self._db.get_item(TableName=self.table, Key=_key(ref.key), ConsistentRead=True).get("Item")
        if not item:
            return None
        lease = _lease(item)
        return lease if lease.expires_at > self.clock.now() else None

    def _put(self, lease: Lease, condition: str, values: dict[str, Any]) -> Lease | None:
        """Write ``lease`` if ``condition`` holds; else return the holder's lease."""
        item = {
            **_key(lease.key),
            "owner": s(lease.owner),
            "acquired_at": n(lease.acquired_at),
            "expires_at": n(lease.expires_at),
        }
        try:
            with _conditional():
                self._db.put_item(
                    TableName=self.table,
                    Item=item,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **({"ExpressionAttributeNames": {"#owner": "owner"}} if "#owner" in condition else {}),
                )
        except _Lost as lost:
            return lost.lease or lease
        return None


class _Lost(Exception):
    """A conditional write found another holder (``lease``) or no item (None).

    Internal control flow: never escapes this module.
    """

    def __init__(self, lease: Lease | None) -> None:
        super().__init__()
        self.lease = lease


@contextmanager
def _conditional() -> Iterator[None]:
    """Turns ConditionalCheckFailed into ``_Lost`` and other botocore errors into ours."""
    try:
        yield
    except ClientError as exc:
        if error_code(exc) == _FAILED:
            item: Any = exc.response.get("Item")  # the holder's item (ReturnValuesOnConditionCheckFailure)
            raise _Lost(_lease(item) if item else None) from None
        raise translate(exc, "change a deploy lock") from exc
    except BotoCoreError as exc:
        raise translate(exc, "change a deploy lock") from exc


def _key(key: str) -> dict[str, dict[str, str]]:
    return {"pk": s(lock_pk(key)), "sk": s(LOCK_SK)}


def _lease(item: dict[str, Any]) -> Lease:
    key = text(item, "pk").removeprefix("LOCK#")
    return Lease(key, text(item, "owner"), number(item, "acquired_at"), number(item, "expires_at"))
