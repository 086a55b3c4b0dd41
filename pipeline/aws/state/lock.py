"""``DynamoLockManager``: one fenced lease per (service, environment), conditional writes only.

The lease is the item ``LOCK#<service>@<env>`` / ``LOCK`` holding ``owner``,
``acquired_at`` / ``expires_at`` (the holder's clock, for people), the fencing ``token``,
the renewal ``version``, the ``ttl`` and the holder's process identity (``boot_id``,
``pid_ns``, ``pid``, ``start_time``). The item is never deleted (a release empties
``owner``), so tokens only grow. Every decision is one conditional write on exactly what
was read, so processes racing for the lock cannot both win:

- ``acquire`` reads the item (consistent read) and takes it, with ``token + 1``, on
  condition that it is unchanged, when it is free, released, ours, held by a provably dead
  process (``pipeline.liveness.holder_is_dead``), or held by a run that stopped renewing.
  The last one is judged by ``pipeline.liveness.Watch`` on the taker's own clock: the
  ``(owner, token, version)`` seen unchanged while the taker slept through the lease's ttl.
  No two machines' clocks are ever compared for safety;
- ``renew`` bumps ``version`` and ``expires_at`` on condition ``owner = me AND token = mine``;
- ``release`` empties ``owner`` on the same condition (an ``UpdateItem``: the deploy
  policy needs no ``DeleteItem``);
- ``fence_check`` is the ``ConditionCheck`` that ``DynamoStateStore.commit`` puts in the
  same ``TransactWriteItems`` as a fenced write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws.errors import aws_errors, error_code, translate
from pipeline.aws.session import AwsSession
from pipeline.aws.state.table import LOCK_SK, lock_pk, n, number, s, text
from pipeline.core.errors import LockHeldError
from pipeline.core.model import ServiceRef
from pipeline.core.ports import Clock, Lease, ProcessIdentity
from pipeline.liveness import Watch, this_process

IAM_ACTIONS: frozenset[str] = frozenset({"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"})

_FAILED = "ConditionalCheckFailedException"
_NAMES = {"#owner": "owner", "#token": "token", "#version": "version", "#ttl": "ttl"}
_HELD_BY_ME = "#owner = :me AND #token = :token"


class DynamoLockManager:
    """``LockManager`` on the environment's table; safe across threads, processes and hosts.

    ``identity`` names the calling process in the leases it takes (tests plant leases of
    other processes with it)."""

    def __init__(
        self,
        session: AwsSession,
        table: str,
        clock: Clock,
        *,
        identity: Callable[[], ProcessIdentity] = this_process,
    ) -> None:
        self._session = session
        self.table = table
        self.clock = clock
        self.identity = identity

    @property
    def _db(self) -> Any:
        return self._session.client("dynamodb")

    def acquire(self, ref: ServiceRef, owner: str, ttl: float) -> Lease:
        """Take the lock of ``ref`` for ``ttl`` seconds, or raise LockHeldError naming the holder.

        May sleep (the injected clock) up to the holder's ttl while watching a lease that
        looks expired; refuses at once a lease that its holder's clock says is live."""
        watch = Watch()
        while True:
            held = self._read(ref.key)
            now = self.clock.now()
            verdict = watch.verdict(held, owner, now, ttl)
            if verdict == Watch.TAKE:
                keeps_since = held is not None and held.owner == owner
                since = held.acquired_at if held is not None and keeps_since else now
                token = (held.token if held is not None else 0) + 1
                lease = Lease(ref.key, owner, since, now + ttl, token, 0, ttl, self.identity())
                if self._put_if_unchanged(lease, held):
                    return lease
                watch = Watch()  # another run wrote first: read again and judge afresh
                continue
            assert held is not None  # TAKE covers a missing lease
            if verdict == Watch.REFUSE:
                raise LockHeldError(held.key, held.owner, held.acquired_at, held.expires_at)
            self.clock.sleep(watch.slice)
            watch.waited()

    def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend ``lease`` to ``now + ttl`` if its owner and token still hold it (even expired
        but not taken over). Raises LockHeldError naming the holder ("nobody" if released)."""
        values = {**_mine(lease), ":expires": n(self.clock.now() + ttl), ":ttl": n(ttl), ":one": n(1)}
        values[":zero"] = n(0)
        try:
            with _conditional():
                answer = self._db.update_item(
                    TableName=self.table,
                    Key=_key(lease.key),
                    UpdateExpression="SET expires_at = :expires, #ttl = :ttl,"
                    " #version = if_not_exists(#version, :zero) + :one",
                    ConditionExpression=_HELD_BY_ME,
                    ExpressionAttributeNames=_NAMES,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except _Lost as lost:
            holder = lost.lease
            if holder is None or not holder.owner:
                raise LockHeldError(lease.key, "nobody", lease.acquired_at, lease.expires_at) from None
            raise LockHeldError(holder.key, holder.owner, holder.acquired_at, holder.expires_at) from None
        return _lease(answer["Attributes"])

    def release(self, lease: Lease) -> None:
        """Give the lock up if ``lease`` still holds it. Idempotent; the item (and its token) stays."""
        try:
            with _conditional():
                self._db.update_item(
                    TableName=self.table,
                    Key=_key(lease.key),
                    UpdateExpression="SET #owner = :nobody, expires_at = :zero",
                    ConditionExpression=_HELD_BY_ME,
                    ExpressionAttributeNames={"#owner": "owner", "#token": "token"},
                    ExpressionAttributeValues={**_mine(lease), ":nobody": s(""), ":zero": n(0)},
                )
        except _Lost:
            return

    def holder(self, ref: ServiceRef) -> Lease | None:
        """The current lease of ``ref`` while its holder's estimate says it is live, or None."""
        lease = self._read(ref.key)
        live = lease is not None and lease.owner and lease.expires_at > self.clock.now()
        return lease if live else None

    def holder_name(self, key: str) -> str:
        """Who holds ``key`` now, for a message ("nobody" when free or released)."""
        lease = self._read(key)
        return lease.owner if lease is not None and lease.owner else "nobody"

    def fence_check(self, fence: Lease) -> dict[str, Any]:
        """The ``ConditionCheck`` transaction item: ``fence`` still holds its lock."""
        return {
            "ConditionCheck": {
                "TableName": self.table,
                "Key": _key(fence.key),
                "ConditionExpression": _HELD_BY_ME,
                "ExpressionAttributeNames": {"#owner": "owner", "#token": "token"},
                "ExpressionAttributeValues": _mine(fence),
            }
        }

    def _read(self, key: str) -> Lease | None:
        with aws_errors(f"read the lock of {key} in {self.table}"):
            item = self._db.get_item(TableName=self.table, Key=_key(key), ConsistentRead=True).get("Item")
        return _lease(item) if item else None

    def _put_if_unchanged(self, lease: Lease, seen: Lease | None) -> bool:
        """Write ``lease`` if the item is still what was read (``seen``; None: absent)."""
        who = lease.holder
        item = {
            **_key(lease.key),
            "owner": s(lease.owner),
            "acquired_at": n(lease.acquired_at),
            "expires_at": n(lease.expires_at),
            "token": n(lease.token),
            "version": n(lease.version),
            "ttl": n(lease.ttl),
            "boot_id": s(who.boot_id),
            "pid_ns": s(who.pid_ns),
            "pid": n(who.pid),
            "start_time": n(who.start_time),
        }
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        if seen is not None:
            condition = {
                # An item written before tokens existed has none: it counts as token 0, version 0.
                "ConditionExpression": "#owner = :owner AND "
                "(#token = :token OR attribute_not_exists(#token)) AND "
                "(#version = :version OR attribute_not_exists(#version))",
                "ExpressionAttributeNames": {"#owner": "owner", "#token": "token", "#version": "version"},
                "ExpressionAttributeValues": {
                    ":owner": s(seen.owner),
                    ":token": n(seen.token),
                    ":version": n(seen.version),
                },
            }
        try:
            with _conditional():
                self._db.put_item(TableName=self.table, Item=item, **condition)
        except _Lost:
            return False
        return True


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


def _mine(lease: Lease) -> dict[str, Any]:
    return {":me": s(lease.owner), ":token": n(lease.token)}


def _lease(item: dict[str, Any]) -> Lease:
    key = text(item, "pk").removeprefix("LOCK#")
    identity = ProcessIdentity(
        text(item, "boot_id"), text(item, "pid_ns"), int(number(item, "pid")), int(number(item, "start_time"))
    )
    return Lease(
        key,
        text(item, "owner"),
        number(item, "acquired_at"),
        number(item, "expires_at"),
        int(number(item, "token")),
        int(number(item, "version")),
        number(item, "ttl"),
        identity,
    )
