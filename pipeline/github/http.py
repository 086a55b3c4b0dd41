"""The one HTTP client of GitHub's REST API: base URL, token, headers, retries, pages, errors.

- Base URL from ``GITHUB_API_URL`` (set by GitHub Actions; GitHub Enterprise Server is
  ``https://HOST/api/v3``), default ``https://api.github.com``.
- Token from ``$GITHUB_TOKEN`` or another variable named by the caller; sent as
  ``Authorization: Bearer``, with ``Accept: application/vnd.github+json`` and
  ``X-GitHub-Api-Version: 2022-11-28``.
- Transient failures are retried with tenacity: connection errors and timeouts, 5xx on
  idempotent requests, and rate limits (429, or 403 with ``Retry-After`` or no remaining
  quota), waiting what ``Retry-After`` / ``x-ratelimit-reset`` says (up to a minute).
  A POST that answered 5xx is not repeated: it may have taken effect; the commands are
  idempotent, so running them again is the fix.
- Lists follow the ``Link: <...>; rel="next"`` header.
- Failures become ``PipelineError``s that say what to do: 401 (token missing or expired),
  403 (which App permission is missing), 404 (not there, or not visible to the token).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from pipeline.core.errors import NotFoundError, PlatformError, TransientPlatformError, UsageError

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
MAX_WAIT = 60.0  # seconds; a longer rate-limit wait fails with the reset time instead
MAX_PAGES = 100
IDEMPOTENT = frozenset({"GET", "PUT", "PATCH", "DELETE"})

# (path pattern, App permission) for the 403 hint; the first match wins.
PERMISSIONS = (
    (r"/contents/|/git/", "Contents"),
    (r"/pulls", "Pull requests"),
    (r"^/orgs/[^/]+/(members|teams)", "Members (an organisation permission)"),
    (r"/deployments", "Deployments"),
    (r"/actions/", "Actions"),
)


@dataclass(frozen=True, slots=True)
class GitHubSettings:
    """Where the API is and which token to send. ``token_env`` names the token's variable."""

    api_url: str
    token: str
    token_env: str = "GITHUB_TOKEN"
    timeout: float = 30.0
    attempts: int = 4

    @classmethod
    def from_env(
        cls, token_env: str = "GITHUB_TOKEN", environ: Mapping[str, str] | None = None
    ) -> GitHubSettings:
        env = os.environ if environ is None else environ
        token = env.get(token_env, "").strip()
        if not token:
            raise UsageError(
                f"no GitHub token: ${token_env} is empty or not set",
                hint=f"set {token_env} to a GitHub App installation token (in a workflow: "
                "actions/create-github-app-token right before this step), or name another "
                "variable with --token-env",
            )
        api_url = (env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
        if not re.match(r"^https?://[^/\s]+", api_url):
            raise UsageError(
                f"GITHUB_API_URL is not an http(s) URL: {api_url!r}",
                hint="unset it for github.com, or use https://HOST/api/v3 for GitHub Enterprise Server",
            )
        return cls(api_url=api_url, token=token, token_env=token_env)


class _Retry(Exception):
    """A failure worth another attempt; ``delay`` is what the server asked us to wait."""

    def __init__(self, response: httpx.Response | None, error: Exception | None, delay: float | None) -> None:
        super().__init__(str(error or response))
        self.response = response
        self.error = error
        self.delay = delay


class GitHubHttp:
    """JSON over HTTP to GitHub's REST API. Use as a context manager, or ``close()`` it."""

    def __init__(
        self,
        settings: GitHubSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=settings.api_url + "/",
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "Authorization": f"Bearer {settings.token}",
                "User-Agent": "pipeline-toolkit",
            },
            timeout=settings.timeout,
            follow_redirects=False,
            transport=transport,
        )

    def __enter__(self) -> GitHubHttp:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # --- calls -------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        """One request (retried when transient). A status in ``allow`` is returned as it is;
        any other error status raises a ``PipelineError``."""
        response = self._send(method, path, params, json)
        if response.status_code < 300 or response.status_code in allow:
            return response
        raise self._error(method, path, response)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded body of ``call`` (None for an empty one, e.g. 204)."""
        response = self.call(method, path, **kwargs)
        return response.json() if response.content else None

    def optional(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """GET ``path``; None when GitHub answers 404."""
        response = self.call("GET", path, params=params, allow=(404,))
        return None if response.status_code == 404 else response.json()

    def pages(self, path: str, params: Mapping[str, str | int] | None = None) -> list[Any]:
        """Every item of a list endpoint, following ``Link: rel="next"`` (100 a page)."""
        items: list[Any] = []
        url: str | None = path
        query: Mapping[str, str | int] | None = {**(params or {}), "per_page": 100}
        for _ in range(MAX_PAGES):
            if url is None:
                break
            response = self.call("GET", url, params=query)
            items.extend(response.json())
            url, query = response.links.get("next", {}).get("url"), None
        return items

    # --- retries -----------------------------------------------------------------

    def _send(self, method: str, path: str, params: Any, body: Any) -> httpx.Response:
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.attempts),
            wait=_wait,
            retry=retry_if_exception_type(_Retry),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(method, path, params, body)
        except _Retry as final:
            if final.response is not None:
                return final.response
            raise TransientPlatformError(
                f"cannot reach GitHub at {self.settings.api_url}: {final.error}",
                hint="check GITHUB_API_URL (GitHub Enterprise Server: https://HOST/api/v3) and the "
                "network, then run the command again",
            ) from final.error
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _once(self, method: str, path: str, params: Any, body: Any) -> httpx.Response:
        url = path if path.startswith(("http://", "https://")) else path.lstrip("/")
        try:
            response = self._client.request(method, url, params=params, json=body)
        except (httpx.ConnectError, httpx.TimeoutException, httpx.RemoteProtocolError) as exc:
            if method in IDEMPOTENT or isinstance(exc, httpx.ConnectError):
                raise _Retry(None, exc, None) from exc
            raise TransientPlatformError(
                f"GitHub did not answer {method} {path}: {exc}",
                hint="run the command again: it reuses what the first attempt created",
            ) from exc
        delay = _rate_limit_delay(response)
        if delay is not None and delay <= MAX_WAIT:
            raise _Retry(response, None, delay)
        if response.status_code >= 500 and method in IDEMPOTENT:
            raise _Retry(response, None, None)
        return response

    # --- errors ------------------------------------------------------------------

    def _error(self, method: str, path: str, response: httpx.Response) -> Exception:
        status, said = response.status_code, _message(response)
        what = f"GitHub answered {status} to {method} {_plain(path, self.settings.api_url)}"
        if status == 401:
            return PlatformError(
                f"{what}: {said or 'Bad credentials'}: the token in ${self.settings.token_env} was refused",
                hint="the token is missing, wrong or expired; GitHub App installation tokens last one "
                "hour, so mint one (actions/create-github-app-token) right before this step",
            )
        if status in (403, 429) and _rate_limit_delay(response) is not None:
            return TransientPlatformError(
                f"{what}: rate limited ({said})", hint="wait for the limit to reset, then run it again"
            )
        if status == 403:
            return PlatformError(
                f"{what}: {said}: the token lacks a permission", hint=_permission_hint(method, path)
            )
        if status == 404:
            return NotFoundError(
                f"{what}: not found",
                hint="check the repository (OWNER/REPO), number or branch; GitHub also answers 404 "
                "for a private repository the token cannot see: install the GitHub App on it",
            )
        if status >= 500:
            return TransientPlatformError(
                f"{what}: {said}", hint="GitHub is failing; run the command again later"
            )
        return PlatformError(f"{what}: {said}", hint="the message above is GitHub's; fix the input it names")


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, _Retry) and error.delay is not None:
        return max(float(error.delay), 0.0)
    backoff: float = 0.5 * 2.0 ** (state.attempt_number - 1)
    return min(backoff, 8.0)


def _rate_limit_delay(response: httpx.Response) -> float | None:
    """Seconds to wait when the response is a (secondary) rate limit, else None."""
    if response.status_code not in (403, 429):
        return None
    retry_after = response.headers.get("retry-after")
    if retry_after is not None and retry_after.strip().isdigit():
        return float(retry_after)
    if response.headers.get("x-ratelimit-remaining") == "0":
        reset = response.headers.get("x-ratelimit-reset", "")
        return max(float(reset) - time.time(), 0.0) if reset.isdigit() else MAX_WAIT + 1
    if response.status_code == 429 or "rate limit" in _message(response).lower():
        return 60.0
    return None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return ""
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    details = [str(e.get("message") or e.get("code") or "") for e in errors]
    return "; ".join([str(body.get("message", "")), *[d for d in details if d]])


def _plain(path: str, api_url: str) -> str:
    return "/" + path.removeprefix(api_url).lstrip("/")


def _permission_hint(method: str, path: str) -> str:
    level = "read" if method == "GET" else "write"
    plain = "/" + re.sub(r"^https?://[^/]+", "", path).lstrip("/")
    plain = re.sub(r"^/api/v3", "", plain)
    for pattern, permission in PERMISSIONS:
        if re.search(pattern, plain):
            return (
                f"the GitHub App whose token this is needs the '{permission}: {level}' permission "
                "and must be installed on the repository or organisation; docs/github.md lists what "
                "each command needs"
            )
    return "the token cannot do this; docs/github.md lists the permissions each command needs"
