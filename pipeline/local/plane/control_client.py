"""A small synchronous JSON client of the plane's control API (stdlib ``urllib`` only).

The adapters run in the orchestrator's thread, so they talk plain blocking HTTP. A client
built with ``for_state_dir`` finds (and, if needed, starts) the project's plane through
``ensure_plane``; when the plane stops answering (or refuses the token: a new plane has a
new one) it looks again once, so a ``local down`` + ``local up`` in the middle of a
deployment costs one retry, not the deployment. Every request carries the plane's token.

Errors become ``pipeline.core.errors`` classes: 404 -> NotFoundError, other 4xx ->
PlatformError, 5xx and an unreachable plane -> TransientPlatformError (the engine retries).
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.core.errors import NotFoundError, PlatformError, TransientPlatformError
from pipeline.local.plane.access import auth_headers
from pipeline.local.plane.lifecycle import PlaneInfo, ensure_plane, read_plane

PLANE_LOG = "logs/plane.log under .pipeline (or $PIPELINE_LOCAL_HOME)"


class PlaneClient:
    """Calls the plane ``locate()`` finds, with its token; ``locate(True)`` must find the
    plane afresh (a restarted plane has a new port and a new token)."""

    def __init__(self, locate: Callable[[bool], PlaneInfo], timeout: float = 30.0) -> None:
        self._locate = locate
        self._timeout = timeout
        self._base: str | None = None
        self._token = ""
        self._url: str | None = None  # fixed by ``for_url``

    @classmethod
    def for_url(cls, url: str, timeout: float = 30.0, *, token: str = "") -> PlaneClient:
        """A client of the plane at ``url`` whose token is ``token`` (``PlaneInfo.token``)."""
        fixed = PlaneInfo(0, 0, "", 0.0, token)
        client = cls(lambda _fresh: fixed, timeout)
        client._url = url
        return client

    @classmethod
    def for_state_dir(cls, state_dir: Path, timeout: float = 30.0) -> PlaneClient:
        """A client of the plane of ``state_dir``, starting it if it is not running."""
        return cls(lambda _fresh: ensure_plane(state_dir)[0], timeout)

    @property
    def base_url(self) -> str:
        if self._base is None:
            self._find(False)
        assert self._base is not None
        return self._base

    @property
    def token(self) -> str:
        """The plane's token (for the Lambda runtime's client, which shares the API)."""
        self.base_url  # noqa: B018 - locate the plane (and its token) first
        return self._token

    def _find(self, fresh: bool) -> None:
        info = self._locate(fresh)
        self._base = self._url or info.url
        self._token = info.token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
             query: dict[str, str] | None = None, timeout: float | None = None) -> dict[str, Any]:
        """One request; the decoded JSON object answered. See the module docstring for errors."""
        try:
            return self._once(method, path, body, query, timeout)
        except _Unreachable:
            self._find(True)
        try:
            return self._once(method, path, body, query, timeout)
        except _Unreachable as exc:
            raise TransientPlatformError(
                f"the local plane at {self._base} does not answer: {exc.reason}",
                hint=f"run `pipeline local up`; its log is {PLANE_LOG}",
            ) from exc

    def _once(self, method: str, path: str, body: dict[str, Any] | None,
              query: dict[str, str] | None, timeout: float | None) -> dict[str, Any]:
        url = self.base_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", **auth_headers(self._token)}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self._timeout) as resp:
                answer = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # a plane restarted on the same port has a new token: look again
                raise _Unreachable(f"it refused the token ({_translate(method, path, exc).message})") from exc
            raise _translate(method, path, exc) from exc
        except (urllib.error.URLError, ConnectionError) as exc:
            raise _Unreachable(str(getattr(exc, "reason", exc))) from exc
        except TimeoutError as exc:
            raise TransientPlatformError(
                f"the local plane did not answer {method} {path} within {timeout or self._timeout:g}s",
                hint=f"the machine may be overloaded; see {PLANE_LOG}",
            ) from exc
        except ValueError as exc:
            raise PlatformError(f"the local plane answered {method} {path} with invalid JSON: {exc}") from exc
        if not isinstance(answer, dict):
            raise PlatformError(f"the local plane answered {method} {path} with {type(answer).__name__}")
        return answer


def store_held_spans(state_dir: Path, timeout: float = 15.0) -> None:
    """Have the plane of ``state_dir``, if one runs, store the router spans it holds back
    while its router is busy (``POST /v1/spans/store``), so that a read of the span store
    right after sees every span finished so far. Best effort: with no plane nothing is held
    back, and a plane that does not answer is not started or waited for."""
    info = read_plane(state_dir)
    if info is None:
        return
    with contextlib.suppress(PlatformError):
        PlaneClient.for_url(info.url, timeout, token=info.token).call("POST", "/v1/spans/store")


class _Unreachable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _translate(method: str, path: str, exc: urllib.error.HTTPError) -> PlatformError | NotFoundError:
    try:
        data = json.loads(exc.read() or b"{}")
    except ValueError:
        data = {}
    message = str(data.get("error") or exc.reason)
    hint = str(data.get("hint") or f"see {PLANE_LOG}")
    if exc.code == 404:
        return NotFoundError(f"local plane: {message}", hint=hint)
    if exc.code >= 500:
        return TransientPlatformError(f"local plane failed {method} {path}: {message}", hint=hint)
    return PlatformError(f"local plane refused {method} {path}: {message}", hint=hint)
