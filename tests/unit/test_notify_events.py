"""Which changes of a run are notified, what a webhook receives, and the notify: config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.config import load_project
from pipeline.config.observe import NOTIFY_EVENTS
from pipeline.core.errors import ConfigError
from pipeline.core.plan import Strategy
from pipeline.core.state import Phase
from pipeline.core.steps import Approve, SetWeight, canary
from pipeline.notify.events import Notifier, event_of
from pipeline.notify.notice import Notice
from pipeline.notify.webhook import payload
from pipeline.observe.fanout import Observers
from pipeline.operations import deploy
from pipeline.promotion import Requirements, promote
from pipeline.testing import release
from tests.unit.support.engine import CANARY, REF, stable_world
from tests.unit.support.project import WriteProject


class Collected:
    name = "collected"

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    def send(self, notice: Notice) -> None:
        self.notices.append(notice)


def test_an_approval_step_is_notified_as_paused_and_its_timeout_as_rolled_back() -> None:
    world, _ = stable_world()
    channel = Collected()
    notifier = Notifier([channel], frozenset({"started", "paused", "rolled_back", "succeeded"}),
                        clock=world.clock, store=world.store)
    gated = replace(CANARY, steps=canary((SetWeight(20), Approve(), SetWeight(50))))
    state = deploy(replace(world.ctx(), observer=Observers([notifier])), REF, release("v2"), gated)
    assert state.phase is Phase.ROLLED_BACK  # nobody continued before the hold timeout
    assert [n.event for n in channel.notices] == ["started", "paused", "rolled_back"]
    assert channel.notices[1].phase == "progressing" and channel.notices[1].version == "v2"
    assert channel.notices[-1].reason == state.reason


def test_a_promotion_that_succeeds_is_notified_as_promoted() -> None:
    world, _ = stable_world()
    channel = Collected()
    notifier = Notifier([channel], frozenset(NOTIFY_EVENTS), clock=world.clock, store=world.store)
    ctx = replace(world.ctx(), observer=Observers([notifier]))
    state = promote(ctx, "orders", "staging", "prod", CANARY, Requirements())
    assert state.phase is Phase.SUCCEEDED
    assert [(n.event, n.environment) for n in channel.notices] == [("started", "prod"), ("promoted", "prod")]
    assert channel.notices[-1].purpose == "promote from staging"
    assert channel.notices[-1].subject == "orders in prod: release promoted (v1)"


def test_the_events_of_a_promotion_and_of_a_rollback_redeploy() -> None:
    world, _ = stable_world()
    before = world.store.load(REF)
    assert before is not None
    running = before.evolve(phase=Phase.DRAINING)
    done = before.evolve(phase=Phase.SUCCEEDED)
    assert event_of(running, done, "promote from staging") == "promoted"
    assert event_of(running, done, "rollback") == "rolled_back"
    assert event_of(running, done, "deploy") == "succeeded"
    assert event_of(running, before.evolve(phase=Phase.ABORTED), "deploy") == "failed"
    assert event_of(done, done, "deploy") is None


def test_a_channel_that_raises_anything_fails_no_deployment() -> None:
    class Broken:
        name = "broken"

        def send(self, notice: Notice) -> None:
            raise RuntimeError("boom")

    world, _ = stable_world()
    notifier = Notifier([Broken()], frozenset({"succeeded"}), clock=world.clock, store=world.store)
    strategy: Strategy = CANARY
    state = deploy(replace(world.ctx(), observer=Observers([notifier])), REF, release("v2"), strategy)
    assert state.phase is Phase.SUCCEEDED
    failed = [r.detail for r in world.store.history(REF) if r.action == "notify.failed"]
    assert failed == ["succeeded notification via broken failed: RuntimeError: boom"]


def test_the_webhook_body_escapes_deployment_text_and_links_the_report() -> None:
    notice = Notice("rolled_back", "orders", "prod", "d-1", "abc123", "sha256:00", "carol", "rolled_back",
                    reason="p95 <@U123> & <https://evil.example|click>", link="https://r.example/d-1.html")
    body = payload(notice)
    assert "<@U123>" not in body["text"]
    assert "&lt;@U123&gt; &amp; &lt;https://evil.example|click&gt;" in body["text"]
    assert body["text"].endswith("<https://r.example/d-1.html|report>")
    assert body["blocks"][0]["text"]["text"] == "*orders in prod: deployment rolled back (abc123)*"


PROJECT = """
    project: shop
    organisations: {dev: {}}
    environments:
      dev:
        platform: local
        owner: dev
        local: {port: 8100}
        notify: {webhook: "hooks.slack.com/services/T0/B0/x", events: [started, finished]}
      qa:
        platform: local
        owner: dev
        local: {port: 8200}
        notify: {events: [started]}
        observability: {otlp: "collector:4318"}
      stg:
        platform: local
        owner: dev
        local: {port: 8300}
        notify: {webhook: "${HOOK}", report: "https://r.example/{svc}/{deployment}"}
    """


def test_notify_mistakes_are_reported_with_their_line(write_project: WriteProject) -> None:
    root: Path = write_project(PROJECT)
    with pytest.raises(ConfigError) as info:
        load_project(root)
    text = "\n".join(info.value.problems)
    assert "pipeline.yaml:8: environments.dev.notify.webhook: " in text and "${VARIABLE}" in text
    assert "environments.dev.notify.events[1]: " in text and "'finished'" in text
    assert "pipeline.yaml:13: environments.qa.notify: notify needs a webhook, an sns topic or both" in text
    assert "environments.qa.observability.otlp: " in text and "http(s) URL" in text
    assert ("environments.stg.notify.report: unknown placeholder {svc}: use {service}, {environment}, "
            "{deployment}, {version}") in text
