"""A replica's response head, parsed; and the two ways a replica connection fails.

Used by ``pipeline.local.http.upstream``: ``parse_head`` reads the status line, works out
the body's framing (``Content-Length``, chunked, or until the connection ends) and whether
the connection may be reused, and keeps the header lines the router passes back to its
client as they came (``lines``): all but the hop-by-hop ones and the router's own
(``X-Pipeline-Slot``, ``X-Pipeline-Version``). It reads the head with a few compiled regular
expressions over the bytes (in C) instead of a Python loop per header line: the router
parses one head per request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NOT_PASSED_BACK = ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                   "transfer-encoding", "upgrade", "host", "content-length", "expect",
                   "x-pipeline-slot", "x-pipeline-version")
"""Header names (lower case) of a replica's answer that the router does not pass back."""
_DROPPED = re.compile(rb"\r\n(?:" + b"|".join(re.escape(n.encode()) for n in NOT_PASSED_BACK)
                      + rb")[ \t]*:[^\r\n]*", re.IGNORECASE)
_FRAMING = re.compile(rb"\r\n(content-length|transfer-encoding|connection|date)[ \t]*:([^\r\n]*)",
                      re.IGNORECASE)  # what the router reads of a head, in one pass


class UpstreamRefused(ConnectionError):
    """The replica refused the connection: nothing was sent."""


class UpstreamDropped(ConnectionError):
    """The replica closed the connection before a complete answer."""


@dataclass(slots=True)
class Head:
    """A response's status line and the header lines passed back (``Name: value`` lines,
    each ending with CRLF, as sent); ``dated``: they hold a ``Date``."""

    status: int
    reason: str
    lines: bytes = b""
    length: int | None = None
    chunked: bool = False
    keep_alive: bool = True
    dated: bool = False
    announced: int | None = None  # the Content-Length sent (kept when an answer to HEAD has no body)


def parse_head(raw: bytes) -> Head:
    """The head ``raw`` (ending with the blank line); UpstreamDropped for a malformed status
    line, ValueError for a malformed ``Content-Length``."""
    first = raw.find(b"\r\n")
    status_line = raw[:first].decode("latin-1")
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise UpstreamDropped(f"the replica sent a malformed status line: {status_line[:80]!r}")
    fields = raw[first:-4]  # "\r\nName: value" per header line
    head = Head(int(code), reason, keep_alive=version == "HTTP/1.1")
    length: bytes | None = None
    for found, value in _FRAMING.findall(fields):
        name = found.lower()
        if name == b"content-length":
            length = value.strip()
        elif name == b"transfer-encoding":
            head.chunked = head.chunked or b"chunked" in value.lower()
        elif name == b"connection":
            head.keep_alive = head.keep_alive and b"close" not in value.lower()
        else:
            head.dated = True
    if length is not None and not head.chunked:
        if not length.isdigit():
            raise ValueError(f"the replica sent a malformed Content-Length: {length[:40]!r}")
        head.length = int(length)
    head.announced = head.length
    kept = _DROPPED.sub(b"", fields)
    head.lines = kept[2:] + b"\r\n" if kept else b""
    return head


_CACHED_HEAD = 1024  # bytes: a head longer than this is parsed every time
_CACHE_SIZE = 256
_heads: dict[bytes, Head] = {}


def seen_head(raw: bytes) -> Head:
    """``parse_head(raw)``, remembered: a replica sends the same head bytes answer after answer
    (its ``Date`` changes once a second), and the router reads one head per request. The
    ``Head`` returned is shared: read it, never change it. Heads over ``_CACHED_HEAD`` bytes
    are not kept; at most ``_CACHE_SIZE`` are (all forgotten when full)."""
    head = _heads.get(raw)
    if head is None:
        head = parse_head(raw)
        if len(raw) <= _CACHED_HEAD:
            if len(_heads) >= _CACHE_SIZE:
                _heads.clear()
            _heads[raw] = head
    return head
