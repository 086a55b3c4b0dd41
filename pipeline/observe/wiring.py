"""The observer of an environment's runs, from its config: the trace and the notifications.

The composition root (``pipeline.app``) calls ``observer_for`` once per environment it
deploys to. Spans go to the OTLP collector (``observability.otlp`` or the standard
``OTEL_EXPORTER_OTLP_*`` variables) and, on the local platform, into the plane's span store
(``pipeline trace`` reads them there). Notices go to ``notify.webhook`` and/or
``notify.sns``, with ``notify.report`` (or, in GitHub Actions, the run's page) as the link.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from opentelemetry.sdk.trace.export import SpanExporter

from pipeline.aws.session import AwsSession
from pipeline.aws.sns import SnsTopic
from pipeline.config import EnvironmentConfig
from pipeline.config.observe import NotifyConfig
from pipeline.core.ports import Clock, EventSink, RunObserver, StateStore
from pipeline.core.state import DeploymentState
from pipeline.local.span_export import StoreExporter
from pipeline.local.spans import SpanStore
from pipeline.notify.events import Notifier
from pipeline.notify.notice import Channel, Notice, NotifyFailed
from pipeline.notify.webhook import Webhook
from pipeline.observe.fanout import Observers
from pipeline.observe.setup import run_tracer
from pipeline.observe.spans import RunTracer

_VARIABLE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_tracers: dict[tuple[str | None, Path | None], RunTracer | None] = {}


def tracer_for(env: EnvironmentConfig, clock: Clock, local_home: Path | None) -> RunTracer | None:
    """A tracer on ``clock``; one provider per destination for the whole process (flushed
    at exit), a tracer of its own for each caller (each follows its own run)."""
    key = (env.observability.otlp, local_home if env.platform == "local" else None)
    if key not in _tracers:
        exporters: list[SpanExporter] = []
        if key[1] is not None:
            exporters.append(StoreExporter(SpanStore.of(key[1])))
        _tracers[key] = run_tracer(clock, otlp_endpoint=_traces_url(key[0]), exporters=exporters)
    shared = _tracers[key]
    return shared.fresh(clock) if shared is not None else None


def _traces_url(base: str | None) -> str | None:
    if base is None or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None  # the standard variable wins (pipeline.tracing.exporters_from reads it)
    return base.rstrip("/") + "/v1/traces"


class _Unset:
    """A webhook whose ``${VARIABLE}`` is not set: every notice fails, saying which."""

    name = "webhook"

    def __init__(self, variable: str) -> None:
        self.variable = variable

    def send(self, notice: Notice) -> None:
        raise NotifyFailed(f"the environment variable {self.variable} (notify.webhook) is not set")


def channels_of(notify: NotifyConfig, clock: Clock, session: AwsSession | None,
                environ: Mapping[str, str] | None = None) -> list[Channel]:
    env = os.environ if environ is None else environ
    found: list[Channel] = []
    if notify.webhook is not None:
        variable = _VARIABLE.fullmatch(notify.webhook)
        url = env.get(variable.group(1), "") if variable else notify.webhook
        if url:
            found.append(Webhook(url, sleep=clock.sleep))
        else:
            found.append(_Unset(variable.group(1) if variable else "notify.webhook"))
    if notify.sns is not None:
        found.append(SnsTopic(notify.sns, session))
    return found


def report_link(
    notify: NotifyConfig, environ: Mapping[str, str] | None = None
) -> Callable[[DeploymentState], str]:
    """``notify.report`` with its placeholders filled in; by default, in GitHub Actions, the
    workflow run's page (where the report is an artifact); else no link."""
    env = os.environ if environ is None else environ
    template = notify.report
    if template is None and env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        template = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    if template is None:
        return lambda _: ""
    chosen = template

    def link(state: DeploymentState) -> str:
        return chosen.format(service=state.ref.service, environment=state.ref.environment,
                             deployment=state.id, version=state.release.version)

    return link


def observer_for(env: EnvironmentConfig, *, clock: Clock, store: StateStore, sink: EventSink,
                 local_home: Path | None = None, session: Callable[[], AwsSession] | None = None,
                 ) -> RunObserver | None:
    """The environment's observer, or None when runs there are neither traced nor notified."""
    observers: list[RunObserver] = []
    tracer = tracer_for(env, clock, local_home)
    if tracer is not None:
        observers.append(tracer)
    if env.notify is not None:
        aws = session() if session is not None and env.notify.sns is not None else None
        channels = channels_of(env.notify, clock, aws)
        observers.append(Notifier(channels, frozenset(env.notify.events), clock=clock, store=store,
                                  sink=sink, link=report_link(env.notify)))
    return Observers(observers) if observers else None
