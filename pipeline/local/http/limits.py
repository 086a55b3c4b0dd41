"""Abuse limits of the router's listeners: a connection cap and a header-read deadline.

``RouterLimits`` holds the numbers (defaults below; the plane reads overrides from the
environment, see ``RouterLimits.from_env``). ``ConnectionGate`` applies them to every
listener of the data plane at the socket level, before aiohttp parses anything:

- at most ``max_connections`` client connections are open at once over all listeners; a
  connection beyond the cap is answered ``503`` and closed at once (no request is read);
- a connection must deliver a complete request head within ``header_timeout`` seconds of
  being accepted, or of the end of its previous request (keep-alive); otherwise it is closed.
  Trickling bytes does not extend the deadline (slowloris);
- a request body that stays idle (no byte) for ``body_idle_timeout`` seconds is abandoned
  with ``408`` (enforced by the router while it streams the body).

The gate is not thread-safe: it lives on the data plane's event loop.
"""

from __future__ import annotations

import asyncio
import os
import resource
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from pipeline.local.environ import env_number

MAX_CONNECTIONS_ENV = "PIPELINE_ROUTER_MAX_CONNECTIONS"
HEADER_TIMEOUT_ENV = "PIPELINE_ROUTER_HEADER_TIMEOUT"
BODY_IDLE_TIMEOUT_ENV = "PIPELINE_ROUTER_BODY_IDLE_TIMEOUT"
_FD_RESERVE = 256  # descriptors kept for the control API, replicas' pipes, logs and state
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"X-Pipeline-Router: local\r\nConnection: close\r\nContent-Length: 67\r\n\r\n"
    b'{"error": "the local router is at its connection cap; retry later"}'
)


@dataclass(frozen=True, slots=True)
class RouterLimits:
    """Connection cap (over all listeners of the plane) and timeouts in seconds."""

    max_connections: int = 1024
    header_timeout: float = 10.0
    body_idle_timeout: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RouterLimits:
        """Defaults overridden by ``PIPELINE_ROUTER_MAX_CONNECTIONS``, ``..._HEADER_TIMEOUT`` and
        ``..._BODY_IDLE_TIMEOUT``; ValueError names the variable and the bad value."""
        default = cls()
        return cls(
            max_connections=int(env_number(environ, MAX_CONNECTIONS_ENV, default.max_connections)),
            header_timeout=env_number(environ, HEADER_TIMEOUT_ENV, default.header_timeout),
            body_idle_timeout=env_number(environ, BODY_IDLE_TIMEOUT_ENV, default.body_idle_timeout),
        )

    def fitted_to_descriptors(self) -> RouterLimits:
        """These limits with the cap lowered to what the process's open-file limit allows
        (each proxied connection may hold a client and an upstream descriptor), after
        raising the soft limit to the hard one."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and soft < hard:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                soft = hard
            except (ValueError, OSError):
                pass
        room = max(16, (soft - _FD_RESERVE) // 2) if soft != resource.RLIM_INFINITY else self.max_connections
        return RouterLimits(min(self.max_connections, room), self.header_timeout, self.body_idle_timeout)


class _Tracked(asyncio.Protocol):
    """An accepted connection: delegates to aiohttp's protocol, holds the header deadline.

    The deadline is a number, moved on every request; one timer per connection checks it
    lazily (when it fires early it re-arms for the current deadline), so a request costs no
    timer operation."""

    def __init__(self, gate: ConnectionGate, inner: asyncio.Protocol) -> None:
        self._gate = gate
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._deadline = 0.0  # 0: a request is in progress, no head is awaited
        self._timer: asyncio.TimerHandle | None = None
        # the transport calls aiohttp's methods directly: no extra frame per read
        self.data_received = inner.data_received  # type: ignore[method-assign]
        self.eof_received = inner.eof_received  # type: ignore[method-assign]
        self.pause_writing = inner.pause_writing  # type: ignore[method-assign]
        self.resume_writing = inner.resume_writing  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._gate.tracked[transport] = self
        self.arm()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._gate.open -= 1
        self._gate.tracked.pop(self._transport, None)
        self._inner.connection_lost(exc)

    def arm(self) -> None:
        """(Re)start the header deadline: a request head must arrive within the timeout."""
        self._deadline = self._gate.loop.time() + self._gate.limits.header_timeout
        if self._timer is None:
            self._timer = self._gate.loop.call_at(self._deadline, self._check)

    def disarm(self) -> None:
        self._deadline = 0.0

    def _check(self) -> None:
        self._timer = None
        if not self._deadline or self._transport is None:
            return  # a request is in progress; the next arm() starts a timer
        if self._gate.loop.time() < self._deadline:
            self._timer = self._gate.loop.call_at(self._deadline, self._check)
            return
        self._gate.expired += 1
        self._transport.abort()


class _Refused(asyncio.Protocol):
    """A connection over the cap: one 503 answer, then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).write(_REFUSAL)
        transport.close()


class ConnectionGate:
    """Counts the open connections of every listener it wraps and enforces ``limits``."""

    def __init__(self, limits: RouterLimits, loop: asyncio.AbstractEventLoop) -> None:
        self.limits = limits
        self.loop = loop
        self.open = 0
        self.refused = 0
        self.expired = 0
        self.tracked: dict[object, _Tracked] = {}  # by transport

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` in front of aiohttp's ``factory``."""

        def make() -> asyncio.Protocol:
            if self.open >= self.limits.max_connections:
                self.refused += 1
                return _Refused()
            self.open += 1
            return _Tracked(self, factory())

        return make

    def request_started(self, transport: asyncio.BaseTransport | None) -> None:
        """The head of a request on ``transport`` is complete: stop its header deadline."""
        tracked = self.tracked.get(transport)
        if tracked is not None:
            tracked.disarm()

    def request_done(self, transport: asyncio.BaseTransport | None) -> None:
        """A request on ``transport`` is answered: the next head has ``header_timeout``."""
        tracked = self.tracked.get(transport)
        if tracked is not None and not tracked_closing(transport):
            tracked.arm()

    def stats(self) -> dict[str, int]:
        return {"open": self.open, "refused": self.refused, "header_timeouts": self.expired,
                "max_connections": self.limits.max_connections}


def tracked_closing(transport: asyncio.BaseTransport | None) -> bool:
    return transport is None or transport.is_closing()


def environ_limits() -> RouterLimits:
    """``RouterLimits.from_env(os.environ)`` fitted to the open-file limit."""
    return RouterLimits.from_env(os.environ).fitted_to_descriptors()
