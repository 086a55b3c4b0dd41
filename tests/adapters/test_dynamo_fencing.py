"""DynamoDB state: fenced commits, write-once audit records, and a deploy policy that never
needs ``DeleteItem`` (moto's DynamoDB over HTTP; every call watched with a botocore hook)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.stub import Stubber

from pipeline.aws.session import AwsSession
from pipeline.aws.state import permissions
from pipeline.aws.state.lock import DynamoLockManager
from pipeline.aws.state.store import DynamoStateStore
from pipeline.aws.state.table import ensure_table, lock_pk, n, s
from pipeline.core.errors import LeaseLost, PipelineError
from pipeline.core.ports import Lease
from pipeline.core.state import AbortRequested
from pipeline.testing import FakeClock
from tests.adapters.support.ecs import new_session
from tests.support.store_contract import REF, deployment, record

TABLE = "pipeline-state"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def session(aws: str, clock: FakeClock) -> AwsSession:
    session = new_session()
    ensure_table(session, TABLE, clock)
    return session


@pytest.fixture
def calls(session: AwsSession) -> list[tuple[str, dict[str, Any]]]:
    """Every DynamoDB operation the store and the lock make, with its parameters."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def note(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.append((model.name, dict(params)))

    session.on("before-parameter-build.dynamodb", note)
    return seen


def test_every_call_of_a_deployment_is_declared_and_none_deletes(
    session: AwsSession, clock: FakeClock, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    store, locks = DynamoStateStore(session, TABLE), DynamoLockManager(session, TABLE, clock)
    lease = locks.acquire(REF, "run-a", ttl=30)
    store.commit(deployment(), [record("start", 1.0), record("abort", 2.0, kind="audit")], fence=lease)
    store.commit(deployment(), [], fence=locks.renew(lease, ttl=30))
    store.send(REF, AbortRequested(now=3.0, actor="bob"))
    assert [sig.actor for sig in store.receive(REF)] == ["bob"]
    assert store.receive(REF) == []  # a claimed signal stays in the table but is never taken again
    store.history(REF)
    locks.release(lease)

    used = {name for name, _ in calls}
    # IAM authorises each item of TransactWriteItems by its own action (PutItem, and
    # ConditionCheckItem for a ConditionCheck), not by a TransactWriteItems action:
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
    needed = {f"dynamodb:{name}" for name in used if name != "TransactWriteItems"}
    if "TransactWriteItems" in used:
        needed |= {"dynamodb:PutItem", "dynamodb:ConditionCheckItem"}
    assert needed <= permissions.IAM_ACTIONS
    assert "dynamodb:DeleteItem" not in permissions.IAM_ACTIONS
    assert "DeleteItem" not in used


def test_every_record_is_put_on_condition_that_it_does_not_exist(
    session: AwsSession, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    store = DynamoStateStore(session, TABLE)
    store.commit(None, [record("approve", 1.0, kind="audit")])
    store.commit(deployment(), [record("start", 2.0)])
    (first, second) = [p for name, p in calls if name == "TransactWriteItems"]
    puts = [item["Put"] for call in (first, second) for item in call["TransactItems"]]
    records = [put for put in puts if put["Item"]["sk"]["S"].startswith("REC#")]
    assert len(records) == 2
    assert all(put["ConditionExpression"] == "attribute_not_exists(pk)" for put in records)

    # Replaying the audit record's write (as a second writer with the same key would) is refused.
    db = session.client("dynamodb")
    with pytest.raises(db.exceptions.TransactionCanceledException):
        db.transact_write_items(TransactItems=first["TransactItems"], ClientRequestToken=uuid.uuid4().hex)
    assert [r.detail for r in store.records(REF, kind="audit")] == [""]


def test_a_fenced_commit_of_more_than_one_transaction_checks_the_lease_in_each(
    session: AwsSession, clock: FakeClock, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    store, locks = DynamoStateStore(session, TABLE), DynamoLockManager(session, TABLE, clock)
    lease = locks.acquire(REF, "run-a", ttl=30)
    store.commit(deployment(), [record(f"r{i}", float(i)) for i in range(150)], fence=lease)
    transactions = [p["TransactItems"] for name, p in calls if name == "TransactWriteItems"]
    assert len(transactions) == 2
    assert all("ConditionCheck" in items[0] and len(items) <= 100 for items in transactions)
    assert len(store.history(REF, limit=1000)) == 150


def test_a_lock_item_from_before_fencing_is_taken_over_with_a_token(
    session: AwsSession, clock: FakeClock
) -> None:
    """A lease written by an older toolkit (no token, version, ttl or identity) expires and
    is then taken over like any other, and fencing starts from there."""
    db = session.client("dynamodb")
    item = {"pk": s(lock_pk(REF.key)), "sk": s("LOCK"), "owner": s("old@host:1")}
    db.put_item(TableName=TABLE, Item={**item, "acquired_at": n(clock.t), "expires_at": n(clock.t - 1)})
    locks, store = DynamoLockManager(session, TABLE, clock), DynamoStateStore(session, TABLE)
    lease = locks.acquire(REF, "run-a", ttl=30)
    assert (lease.owner, lease.token) == ("run-a", 1)
    store.commit(deployment(), [], fence=lease)
    locks.release(lease)
    with pytest.raises(LeaseLost):
        store.commit(deployment(), [], fence=lease)


def test_a_failed_transaction_is_lease_lost_only_when_the_fence_failed(
    session: AwsSession, clock: FakeClock
) -> None:
    locks = DynamoLockManager(session, TABLE, clock)
    lease = locks.acquire(REF, "run-a", ttl=30)
    store = DynamoStateStore(session, "no-such-table")
    with pytest.raises(PipelineError, match="no-such-table") as caught:
        store.commit(deployment(), [record("start", 1.0)], fence=lease)
    assert not isinstance(caught.value, LeaseLost)


# --- how AWS reports a cancelled transaction ---------------------------------------------
# TransactWriteItems fails with TransactionCanceledException carrying one CancellationReason
# per item, in request order ("None" for items that did not fail):
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
# Fed through botocore's Stubber so the toolkit parses AWS's documented shape, whatever
# the test endpoint returns.

CONDITION_FAILED = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}


def cancelled(stubber: Stubber, reasons: list[dict[str, str]]) -> None:
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message="Transaction cancelled, please refer cancellation reasons for specific reasons "
        f"[{', '.join(r['Code'] for r in reasons)}]",
        modeled_fields={"CancellationReasons": reasons},
    )


def test_aws_cancelling_for_the_fence_is_lease_lost_naming_the_holder(aws: str, clock: FakeClock) -> None:
    session = new_session(max_attempts=1)
    store = DynamoStateStore(session, TABLE)
    fence = Lease(REF.key, "run-a", clock.t, clock.t + 30, token=3)
    with Stubber(session.client("dynamodb")) as stubber:
        cancelled(stubber, [CONDITION_FAILED, {"Code": "None"}, {"Code": "None"}])
        holder = {"pk": s(lock_pk(REF.key)), "sk": s("LOCK"), "owner": s("run-b"), "token": n(4)}
        stubber.add_response("get_item", {"Item": holder})
        with pytest.raises(LeaseLost, match=r"now held by run-b .*lease token 3"):
            store.commit(deployment(), [record("start", 1.0)], fence=fence)


def test_aws_cancelling_for_a_record_that_exists_is_not_lease_lost(aws: str, clock: FakeClock) -> None:
    session = new_session(max_attempts=1)
    store = DynamoStateStore(session, TABLE)
    fence = Lease(REF.key, "run-a", clock.t, clock.t + 30, token=3)
    with Stubber(session.client("dynamodb")) as stubber:
        cancelled(stubber, [{"Code": "None"}, CONDITION_FAILED, {"Code": "None"}])
        with pytest.raises(PipelineError, match="TransactionCanceledException") as caught:
            store.commit(deployment(), [record("start", 1.0)], fence=fence)
    assert not isinstance(caught.value, LeaseLost)
