"""Per-environment observability and notification settings of ``pipeline.yaml``.

```yaml
environments:
  production:
    observability: {otlp: "http://collector:4318"}
    notify:
      webhook: ${SLACK_WEBHOOK_URL}        # or an https:// URL
      sns: arn:aws:sns:eu-west-1:123456789012:deployments
      events: [started, paused, rolled_back, succeeded, promoted]
      report: "https://ci.example.com/{service}/{deployment}.html"
```
"""

from __future__ import annotations

from string import Formatter
from typing import Annotated, Any, Literal

from pydantic import Field, StrictStr

from pipeline.config.fields import Issue, Matches, Model

NotifyEvent = Literal["started", "paused", "rolled_back", "succeeded", "promoted", "failed"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = (
    "started", "paused", "rolled_back", "succeeded", "promoted", "failed",
)

REPORT_FIELDS = ("service", "environment", "deployment", "version")

_Url = Annotated[StrictStr, Matches(r"^https?://\S+$", "an http(s) URL")]
_Webhook = Annotated[
    StrictStr,
    Matches(r"^(https?://\S+|\$\{[A-Za-z_][A-Za-z0-9_]*\})$",
            "an http(s) URL, or ${VARIABLE} naming the environment variable that holds it"),
]
_Topic = Annotated[StrictStr, Matches(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$",
                                      "the ARN of an SNS topic (arn:aws:sns:REGION:ACCOUNT:NAME)")]
_Report = Annotated[StrictStr, Matches(r"^\S+$", "a URL or path, with {service}, {environment}, "
                                                 "{deployment} or {version} placeholders")]


class ObservabilityConfig(Model):
    """Where the spans of deployment runs go besides the local span store."""

    otlp: _Url | None = Field(
        default=None, description="OTLP/HTTP collector base URL (/v1/traces is added); "
        "OTEL_EXPORTER_OTLP_ENDPOINT wins when set")


class NotifyConfig(Model):
    """Deployment events sent to a Slack-compatible webhook and/or an SNS topic."""

    webhook: _Webhook | None = Field(
        default=None, description="Slack-compatible incoming webhook: URL or ${ENV_VAR} (no secrets in git)",
    )
    sns: _Topic | None = Field(default=None, description="SNS topic ARN (sns:Publish)")
    events: Annotated[tuple[NotifyEvent, ...], Field(min_length=1)] = Field(
        default=NOTIFY_EVENTS, description="which events to send")
    report: _Report | None = Field(
        default=None, description="link to the deployment report; default in GitHub Actions: the run's page")

    def _value_rules(self) -> list[Issue]:
        if self.report is None:
            return []
        try:
            names = {name for _, name, _, _ in Formatter().parse(self.report) if name is not None}
        except ValueError as exc:
            return [(("report",), f"{exc}: write {{{{ and }}}} for literal braces")]
        unknown = sorted(names - set(REPORT_FIELDS))
        if unknown:
            return [(("report",), f"unknown placeholder {{{unknown[0]}}}: use "
                     + ", ".join(f"{{{f}}}" for f in REPORT_FIELDS))]
        return []

    @classmethod
    def _presence_rules(cls, data: dict[Any, Any]) -> list[Issue]:
        if data.get("webhook") is None and data.get("sns") is None:
            return [((), "notify needs a webhook, an sns topic or both")]
        return []
