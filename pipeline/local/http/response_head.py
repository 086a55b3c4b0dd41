"""A replica's response head, parsed; and the two ways a replica connection fails.

Used by ``pipeline.local.http.upstream``: ``parse_head`` reads the status line and headers
and works out the body's framing (``Content-Length``, chunked, or until the connection
ends) and whether the connection may be reused.
"""

from __future__ import annotations

from dataclasses import dataclass


class UpstreamRefused(ConnectionError):
    """The replica refused the connection: nothing was sent."""


class UpstreamDropped(ConnectionError):
    """The replica closed the connection before a complete answer."""


@dataclass(slots=True)
class Head:
    """A response's status line and headers (names as sent, values latin-1 decoded)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    length: int | None = None
    chunked: bool = False
    keep_alive: bool = True


def parse_head(raw: bytes) -> Head:
    """The head ``raw`` (ending with the blank line); UpstreamDropped for a malformed status
    line, ValueError for a malformed ``Content-Length``."""
    lines = raw[:-4].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise UpstreamDropped(f"the replica sent a malformed status line: {lines[0][:80]!r}")
    headers: list[tuple[str, str]] = []
    head = Head(int(code), reason, headers, keep_alive=version == "HTTP/1.1")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        value = value.strip()
        lower = name.lower()
        if lower == "content-length":
            head.length = int(value)
        elif lower == "transfer-encoding":
            head.chunked = "chunked" in value.lower()
        elif lower == "connection":
            head.keep_alive = head.keep_alive and "close" not in value.lower()
        headers.append((name, value))
    if head.chunked:
        head.length = None
    return head
