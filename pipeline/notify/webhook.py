"""Slack-compatible incoming webhooks: ``POST`` JSON ``{"text": ..., "blocks": [...]}``.

Slack, Mattermost, Rocket.Chat and Teams' Slack-compatible connectors take ``text``; Slack
also renders ``blocks``. Text from the deployment is escaped the way Slack's mrkdwn asks
(``&``, ``<``, ``>``: https://api.slack.com/reference/surfaces/formatting#escaping), so a
reason cannot make a link or a mention. The webhook URL is a secret (it carries its
token): errors name only its scheme and host.

Each attempt has a short timeout; connection errors, timeouts, 429 and 5xx answers are
retried (3 attempts, exponential backoff on the given ``sleep``); other answers are not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from pipeline.notify.notice import Notice, NotifyFailed


class _Retryable(NotifyFailed):
    pass


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(notice: Notice) -> dict[str, Any]:
    """The JSON body: plain ``text`` for every receiver, ``blocks`` for Slack."""
    body = "\n".join(escape(line) for line in notice.lines() if not line.startswith("report: "))
    if notice.link:
        body += f"\n<{escape(notice.link)}|report>"
    header = escape(notice.subject)
    return {
        "text": f"{header}\n{body}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{header}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
        ],
    }


class Webhook:
    name = "webhook"

    def __init__(self, url: str, *, timeout: float = 3.0, attempts: int = 3,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._url = url
        self._timeout = timeout
        self._attempts = attempts
        self._sleep = sleep
        parts = urlsplit(url)
        self.where = f"{parts.scheme}://{parts.hostname or '?'}"

    def send(self, notice: Notice) -> None:
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.25, max=2.0),
            retry=retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                self._post(payload(notice))

    def _post(self, body: dict[str, Any]) -> None:
        try:
            answer = httpx.post(self._url, json=body, timeout=self._timeout)
        except httpx.TransportError as exc:
            raise _Retryable(f"webhook {self.where} unreachable: {type(exc).__name__}") from exc
        if answer.status_code == 429 or answer.status_code >= 500:
            raise _Retryable(f"webhook {self.where} answered HTTP {answer.status_code}")
        if answer.status_code >= 400:
            raise NotifyFailed(f"webhook {self.where} refused the message: HTTP {answer.status_code} "
                               f"{answer.text[:200]!r}")
