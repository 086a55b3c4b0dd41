"""Deployment notices to an SNS topic (``sns:Publish``).

The client is made in the topic's own region (from its ARN): SNS answers ``InvalidParameter``
to a publish from another region. ``Subject`` must be ASCII without line breaks and under 100
characters (SNS API Reference, Publish), so it is made so; the message is plain text and
the notice's fields are sent as JSON in the ``pipeline`` message attribute. A FIFO topic
(``.fifo``) gets a group per service and environment and a deduplication id per event of
a deployment.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from pipeline.aws.errors import aws_errors
from pipeline.aws.session import AwsSession

if TYPE_CHECKING:
    from pipeline.notify.notice import Notice

IAM_ACTIONS: frozenset[str] = frozenset({"sns:Publish"})


def region_of(arn: str) -> str:
    return arn.split(":")[3]


def subject_of(text: str) -> str:
    """``text`` as an SNS subject: printable ASCII, one line, at most 99 characters."""
    ascii_text = text.encode("ascii", "replace").decode("ascii")
    return re.sub(r"[^\x20-\x7e]", " ", ascii_text)[:99]


class SnsTopic:
    """A topic to publish notices to (``pipeline.notify.notice.Channel``)."""

    name = "sns"

    def __init__(self, arn: str, session: AwsSession | None = None, *, client: Any = None) -> None:
        self.arn = arn
        if client is None:
            base = session.boto if session is not None else boto3.Session()
            config = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 3})
            client = base.client("sns", region_name=region_of(arn), config=config)
        self._client = client

    def send(self, notice: Notice) -> None:
        """Publish ``notice``; a ``PipelineError`` says why it could not be."""
        params: dict[str, Any] = {
            "TopicArn": self.arn,
            "Subject": subject_of(notice.subject),
            "Message": notice.text(),
            "MessageAttributes": {
                "event": {"DataType": "String", "StringValue": notice.event},
                "pipeline": {"DataType": "String", "StringValue": json.dumps(notice.to_json())},
            },
        }
        if self.arn.endswith(".fifo"):
            params["MessageGroupId"] = f"{notice.service}.{notice.environment}"
            params["MessageDeduplicationId"] = f"{notice.deployment}.{notice.event}"
        with aws_errors(f"publish the {notice.event} notice to {self.arn}"):
            self._client.publish(**params)
