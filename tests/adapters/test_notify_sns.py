"""Deployment notices to SNS, over moto's real HTTP server: a topic with an SQS subscription
receives the events of a deployment run by the engine; a topic that does not exist fails
nothing and is recorded."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import boto3

from pipeline.aws.iam import POLICY_KINDS, ServiceKinds, policy, policy_actions
from pipeline.aws.settings import AwsEnvironment
from pipeline.aws.sns import SnsTopic, subject_of
from pipeline.config.observe import NOTIFY_EVENTS
from pipeline.core.state import Phase
from pipeline.notify.events import Notifier
from pipeline.observe.fanout import Observers
from pipeline.operations import deploy
from pipeline.testing import release
from tests.adapters.conftest import REGION
from tests.unit.support.engine import CANARY, REF, World

ACCOUNT = "123456789012"


def _subscribed_queue() -> tuple[str, str, Any]:
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="deployments")["TopicArn"]
    queue = sqs.create_queue(QueueName="deployments-inbox")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    queue_arn = attributes["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return topic, queue, sqs


def _received(sqs: Any, queue: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = answer.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))  # the SNS envelope
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def test_a_deployment_publishes_its_events_to_the_topic(aws: str) -> None:
    topic, queue, sqs = _subscribed_queue()
    world = World()
    notifier = Notifier([SnsTopic(topic)], frozenset(NOTIFY_EVENTS), clock=world.clock, store=world.store,
                        sink=world.sink, link=lambda s: f"https://reports.example/{s.id}.html")
    state = deploy(replace(world.ctx(), observer=Observers([notifier])), REF, release("v1"), CANARY)
    assert state.phase is Phase.SUCCEEDED

    envelopes = _received(sqs, queue)
    assert [e["MessageAttributes"]["event"]["Value"] for e in envelopes] == ["started", "succeeded"]
    assert envelopes[-1]["Subject"] == "orders in staging: deployment succeeded (v1)"
    fields = json.loads(envelopes[-1]["MessageAttributes"]["pipeline"]["Value"])
    assert fields["deployment"] == state.id and fields["link"] == f"https://reports.example/{state.id}.html"
    assert f"report: https://reports.example/{state.id}.html" in envelopes[-1]["Message"]
    assert not [r for r in world.store.history(REF) if r.action == "notify.failed"]


def test_a_missing_topic_fails_nothing_and_is_recorded(aws: str) -> None:
    world = World()
    missing = f"arn:aws:sns:{REGION}:{ACCOUNT}:no-such-topic"
    notifier = Notifier([SnsTopic(missing)], frozenset({"succeeded"}), clock=world.clock, store=world.store,
                        sink=world.sink)
    state = deploy(replace(world.ctx(), observer=Observers([notifier])), REF, release("v1"), CANARY)
    assert state.phase is Phase.SUCCEEDED
    failed = [r for r in world.store.history(REF) if r.action == "notify.failed"]
    assert len(failed) == 1
    assert failed[0].detail.startswith("succeeded notification via sns failed: could not publish")
    assert any("notification via sns failed" in note for note in world.sink.notes)


def test_subjects_are_what_sns_accepts() -> None:
    subject = subject_of("orders in prod: déploiement\nsucceeded " + "x" * 200)
    assert subject.isascii() and "\n" not in subject and len(subject) < 100


def test_the_deploy_role_may_publish_to_the_configured_topic_only() -> None:
    env = AwsEnvironment(name="prod", region=REGION, account=ACCOUNT, cluster="shop", listener_arn="",
                         test_listener_arn="", state_table="pipeline-state")
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:deployments"
    for kind in POLICY_KINDS:
        granted = [s for s in policy(replace(env, notify_topic=topic), ServiceKinds(), kind=kind)["Statement"]
                   if "sns:Publish" in s["Action"]]
        assert [s["Resource"] for s in granted] == [topic]
        # no topic: no grant
        assert "sns:Publish" not in policy_actions(policy(env, ServiceKinds(), kind=kind))
