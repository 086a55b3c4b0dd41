"""HTTP/1.1 on the wire for the router's listener: request targets in, answers out."""

from __future__ import annotations

import time
from email.utils import formatdate

import httptools

from pipeline.local.messages import Answer, Request

_NO_BODY = frozenset({204, 304})


def request_target(url: bytes) -> str:
    """The request target as a path and query (an absolute-form target loses its authority)."""
    if url[:1] != b"/" and url != b"*":
        parsed = httptools.parse_url(url)
        url = (parsed.path or b"/") + (b"?" + parsed.query if parsed.query else b"")
    return url.decode("utf-8", "surrogateescape")


_date = [0, ""]


def http_date() -> str:
    now = int(time.time())
    if _date[0] != now:
        _date[0], _date[1] = now, formatdate(now, usegmt=True)
    return str(_date[1])


def answer_head(answer: Answer, framing: str) -> bytes:
    """The status line and headers of ``answer``, with ``framing`` (Content-Length, chunked or
    Connection lines) and a Date unless it has one."""
    lines, dated = answer.rendered()
    date = "" if dated else f"Date: {http_date()}\r\n"
    framing = f"{framing}\r\n" if framing else ""
    return b"%s%s%s" % (f"HTTP/1.1 {answer.status} {answer.reason}\r\n".encode("latin-1", "replace"), lines,
                        f"{date}{framing}\r\n".encode("latin-1"))


def encode_answer(answer: Answer, request: Request | None, keep_alive: bool) -> bytes:
    """``answer`` as bytes for ``request``: head and body (none for HEAD, 1xx, 204 or 304)."""
    status = answer.status
    body = answer.body
    sized = status >= 200 and status not in _NO_BODY
    length = answer.announced if answer.announced is not None else len(body)
    framing = [f"Content-Length: {length}"] if sized else []
    if not keep_alive:
        framing.append("Connection: close")
    elif request is not None and request.version == (1, 0):
        framing.append("Connection: keep-alive")
    head = answer_head(answer, "\r\n".join(framing))
    if not body or not sized or (request is not None and request.method == "HEAD"):
        return head
    return head + body
