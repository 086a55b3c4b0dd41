"""A small synchronous client of the local Lambda runtime's control API (see ``lambda_api``).

Used by the port adapters in ``lambda_adapters``, which run in the CLI process while the
runtime runs in the local plane. Errors come back as the same ``pipeline.core.errors``
classes the runtime raised (``NotFoundError``, ``UsageError``, ...); a plane that cannot
be reached is a ``TransientPlatformError``.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pipeline.core import errors
from pipeline.core.errors import NotFoundError, PipelineError, PlatformError, TransientPlatformError
from pipeline.core.model import Slot

_KNOWN: dict[str, type[PipelineError]] = {
    cls.__name__: cls
    for cls in (errors.UsageError, errors.NotFoundError, errors.StateConflict, errors.PlatformError)
}


class LambdaControlClient:
    """Calls ``base_url`` (``http://127.0.0.1:PORT/lambda/``) with the plane's ``token``
    (``PlaneClient.token``; none for a bare ``LambdaServer``). Each call waits ``timeout``
    seconds at most."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, token: str = "") -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._timeout = timeout
        self._token = token

    # --- typed calls ------------------------------------------------------------------

    def publish(
        self, function: str, package: bytes, handler: str, memory: int, timeout: float, env: dict[str, str]
    ) -> dict[str, Any]:
        """Upload ``package`` (zip bytes) as the function's next version; the runtime keeps it
        in its own store (it never reads a path named by a request)."""
        body = {"package": base64.b64encode(package).decode("ascii"), "handler": handler, "memory": memory,
                "timeout": timeout, "environment": env}
        result: dict[str, Any] = self.call("POST", f"functions/{_q(function)}/versions", body)
        return result

    def version(self, function: str, version: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"functions/{_q(function)}/versions/{_q(version)}")
        return result

    def alias(self, function: str, alias: str) -> dict[str, Any] | None:
        """``{"weights", "description"}``, or None when the function or the alias does not exist."""
        try:
            result: dict[str, Any] = self.call("GET", f"functions/{_q(function)}/aliases/{_q(alias)}")
        except NotFoundError:
            return None
        return result

    def set_alias(self, function: str, alias: str, weights: dict[str, float], description: str = "") -> None:
        path = f"functions/{_q(function)}/aliases/{_q(alias)}"
        self.call("PUT", path, {"weights": weights, "description": description})

    def set_reserved(self, function: str, n: int | None) -> None:
        self.call("PUT", f"functions/{_q(function)}/concurrency", {"reserved": n})

    def provisioned(self, function: str, version: str) -> dict[str, Any]:
        """``{"requested", "ready", "status", "reason"}``."""
        path = f"functions/{_q(function)}/versions/{_q(version)}/provisioned"
        result: dict[str, Any] = self.call("GET", path)
        return result

    def set_provisioned(self, function: str, version: str, n: int) -> None:
        self.call("PUT", f"functions/{_q(function)}/versions/{_q(version)}/provisioned", {"concurrency": n})

    def metrics(self, function: str, version: str, since: float, until: float) -> dict[str, Any]:
        query = urllib.parse.urlencode({"since": repr(since), "until": repr(until)})
        path = f"functions/{_q(function)}/versions/{_q(version)}/metrics?{query}"
        result: dict[str, Any] = self.call("GET", path)
        return result

    def warm(self, function: str, qualifier: str, count: int) -> list[dict[str, Any]]:
        """``count`` concurrent keep-warm pings of each version ``qualifier`` serves; a report each."""
        result = self.call("POST", f"functions/{_q(function)}/warm", {"qualifier": qualifier, "count": count})
        reports: list[dict[str, Any]] = result["reports"]
        return reports

    def set_keep_warm(self, function: str, every: float, concurrency: int) -> dict[str, Any]:
        """Schedule keep-warm pings of the function's ``live`` alias (``every`` 0 removes it)."""
        body = {"every": every, "concurrency": concurrency}
        result: dict[str, Any] = self.call("PUT", f"functions/{_q(function)}/keep-warm", body)
        return result

    def keep_warm(self, function: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"functions/{_q(function)}/keep-warm")
        return result

    def slot_version(self, function: str, slot: Slot) -> str | None:
        """The version the ``slot`` alias points at (None when the slot was never provisioned)."""
        alias = self.alias(function, slot.value)
        if not alias or not alias["weights"]:
            return None
        weights: dict[str, float] = alias["weights"]
        return max(weights, key=lambda v: weights[v])

    def invoke_url(self, function: str, version: str) -> str:
        return f"{self.base_url}invoke/{_q(function)}/{_q(version)}"

    # --- transport --------------------------------------------------------------------

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One JSON request; the decoded answer, or the runtime's error raised here."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise _error(method, path, exc) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransientPlatformError(
                f"cannot reach the local Lambda runtime at {self.base_url}: {reason}",
                hint="start the local plane with `pipeline local up`, or check its port",
            ) from exc
        except ValueError as exc:
            raise PlatformError(
                f"the local Lambda runtime answered {method} {path} with something that is not JSON: {exc}",
                hint="is another program listening on that port?",
            ) from exc


def _error(method: str, path: str, exc: urllib.error.HTTPError) -> PipelineError:
    try:
        detail = json.loads(exc.read())["error"]
        cls = _KNOWN.get(detail["type"], PlatformError)
        return cls(detail["message"], hint=detail.get("hint", ""))
    except (ValueError, KeyError, TypeError):
        return PlatformError(
            f"the local Lambda runtime refused {method} {path}: HTTP {exc.code} {exc.reason}",
            hint="check the local plane's log",
        )


def _q(segment: str) -> str:
    return urllib.parse.quote(segment, safe="$")
