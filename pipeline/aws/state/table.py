"""The one DynamoDB table of an environment: key layout, item codecs, creation.

Single-table design, string keys ``pk`` (partition) and ``sk`` (sort)::

    pk                          sk                              item
    DEP#<service>@<env>         STATE                           latest DeploymentState (JSON)
    DEP#<service>@<env>         REC#<ts>#<seq>                  one history or audit record
    DEP#<service>@<env>         SIG#<seq>                       one queued operator signal
    LOCK#<service>@<env>        LOCK                            the lease (owner, expiry)

``<ts>`` is the record's epoch time, fixed width, so records sort by time; ``<seq>`` is a
per-process monotonic nanosecond counter that orders records of the same time (the fake
clock of tests and the engine's bursts) and keeps keys unique. On-demand billing; the
table is created by ``pipeline bootstrap`` (``ensure_table``).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from pipeline.aws.errors import aws_errors
from pipeline.aws.polling import wait_until
from pipeline.aws.session import AwsSession
from pipeline.core.errors import NotFoundError
from pipeline.core.model import ServiceRef
from pipeline.core.ports import Clock

IAM_ACTIONS: frozenset[str] = frozenset({"dynamodb:DescribeTable", "dynamodb:CreateTable"})

STATE_SK = "STATE"
LOCK_SK = "LOCK"
RECORD_PREFIX = "REC#"
SIGNAL_PREFIX = "SIG#"


def deployment_pk(ref: ServiceRef) -> str:
    return f"DEP#{ref.key}"


def lock_pk(key: str) -> str:
    return f"LOCK#{key}"


def record_sk(ts: float, seq: int) -> str:
    return f"{RECORD_PREFIX}{ts:020.6f}#{seq:020d}"


def signal_sk(seq: int) -> str:
    return f"{SIGNAL_PREFIX}{seq:020d}"


class Sequence:
    """Strictly increasing integers in this process, close to wall-clock nanoseconds.

    Mixed with the pid so two processes writing in the same nanosecond never collide.
    """

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return self._last * 100 + os.getpid() % 100


SEQUENCE = Sequence()


# --- attribute values ----------------------------------------------------------------


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: float) -> dict[str, str]:
    return {"N": repr(float(value))}


def text(item: dict[str, Any], key: str, default: str = "") -> str:
    value = item.get(key)
    return str(value["S"]) if value else default


def number(item: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = item.get(key)
    return float(value["N"]) if value else default


# --- the table ---------------------------------------------------------------------------


def table_definition(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments: pk/sk strings, on-demand billing."""
    return {
        "TableName": name,
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "Tags": [{"Key": "managed-by", "Value": "pipeline"}],
    }


def table_status(session: AwsSession, name: str) -> str:
    """``ACTIVE``, ``CREATING``, ... or ``""`` when the table does not exist."""
    dynamodb = session.client("dynamodb")
    try:
        with aws_errors(f"describe DynamoDB table {name}"):
            return str(dynamodb.describe_table(TableName=name)["Table"]["TableStatus"])
    except NotFoundError:
        return ""


def ensure_table(session: AwsSession, name: str, clock: Clock, *, timeout: float = 300.0) -> bool:
    """Create the table if it does not exist and wait until it is ACTIVE.

    Idempotent; returns whether it created the table.
    """
    created = False
    if not table_status(session, name):
        with aws_errors(f"create DynamoDB table {name}"):
            session.client("dynamodb", retries=False).create_table(**table_definition(name))
        created = True
    wait_until(
        lambda: True if table_status(session, name) == "ACTIVE" else None,
        clock=clock,
        timeout=timeout,
        interval=2.0,
        what=f"DynamoDB table {name} becoming ACTIVE",
    )
    return created
