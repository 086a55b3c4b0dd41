"""A replica's response head as the router reads it (``parse_head``), and the remembered
heads of the fast path (``seen_head``)."""

from __future__ import annotations

import pytest

from pipeline.local.http import response_head
from pipeline.local.http.response_head import UpstreamDropped, parse_head, seen_head

AIOHTTP = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 12\r\n"
           b"Date: Mon, 07 Dec 2026 20:36:57 GMT\r\nServer: Python/3.11 aiohttp/3.14.5\r\n\r\n")


def test_a_head_is_read_for_framing_and_keeps_only_the_lines_passed_back() -> None:
    extra = b"Connection: keep-alive\r\nX-Pipeline-Slot: green\r\nServer:"
    head = parse_head(AIOHTTP.replace(b"Server:", extra))
    assert (head.status, head.reason, head.length, head.chunked, head.keep_alive, head.dated) == \
        (200, "OK", 12, False, True, True)
    assert head.lines == (b"Content-Type: application/json; charset=utf-8\r\n"
                          b"Date: Mon, 07 Dec 2026 20:36:57 GMT\r\nServer: Python/3.11 aiohttp/3.14.5\r\n")


def test_chunked_and_close_are_read_whatever_their_case() -> None:
    head = parse_head(b"HTTP/1.1 200 OK\r\ntransfer-ENCODING: Chunked\r\nCONNECTION: Close\r\n\r\n")
    assert head.chunked and not head.keep_alive and head.length is None


@pytest.mark.parametrize("raw, error", [
    (b"HTTP/2 200 OK\r\n\r\n", UpstreamDropped),
    (b"HTTP/1.1 OK\r\n\r\n", UpstreamDropped),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", ValueError),
])
def test_a_malformed_head_is_refused_every_time(raw: bytes, error: type[Exception]) -> None:
    for _ in range(2):  # a refusal is not remembered as an answer
        with pytest.raises(error):
            seen_head(raw)


def test_seen_head_answers_as_parse_head_and_reuses_its_answer() -> None:
    response_head._heads.clear()
    first = seen_head(AIOHTTP)
    assert first == parse_head(AIOHTTP)
    assert seen_head(bytes(bytearray(AIOHTTP))) is first  # equal bytes, another object: remembered
    later = AIOHTTP.replace(b"20:36:57", b"20:36:58")  # the next second's Date: a head of its own
    assert seen_head(later) is not first and seen_head(later).lines != first.lines


def test_seen_head_memory_is_bounded() -> None:
    response_head._heads.clear()
    for n in range(response_head._CACHE_SIZE + 10):
        seen_head(AIOHTTP.replace(b"Content-Length: 12", b"Content-Length: %d" % n))
    assert len(response_head._heads) <= response_head._CACHE_SIZE
    long = AIOHTTP.replace(b"Server:", b"X-Long: " + b"a" * response_head._CACHED_HEAD + b"\r\nServer:")
    assert seen_head(long).length == 12
    assert long not in response_head._heads
