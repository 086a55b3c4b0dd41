"""The plane's log: repeated records suppressed per window with a count, size-capped rotation."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from pipeline.local.plane.logs import RepeatFilter


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _logger(path: Path, clock: _Clock, max_bytes: int) -> logging.Logger:
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=2)
    handler.addFilter(RepeatFilter(10.0, clock))
    logger = logging.getLogger(f"test-plane-logs-{path}")
    logger.propagate = False
    logger.addHandler(handler)
    return logger


def test_a_repeated_error_is_written_once_per_window_then_with_the_suppressed_count(tmp_path: Path) -> None:
    clock = _Clock()
    logger = _logger(tmp_path / "plane.log", clock, 1 << 20)
    for peer in range(500):
        try:
            raise ConnectionResetError("Connection lost")
        except ConnectionResetError:
            logger.exception("Error handling request from %s", f"127.0.0.{peer}")
    logger.warning("another signature")
    clock.now = 10.5
    logger.exception("Error handling request from %s", "127.0.0.9", exc_info=ConnectionResetError("x"))

    lines = (tmp_path / "plane.log").read_text().splitlines()
    assert lines.count("Traceback (most recent call last):") == 1
    assert "another signature" in lines
    summary = "Error handling request from 127.0.0.9 [499 similar message(s) suppressed in the last 10s]"
    assert summary in lines


def test_the_log_rotates_at_its_size_cap(tmp_path: Path) -> None:
    clock = _Clock()
    logger = _logger(tmp_path / "plane.log", clock, 4096)
    for n in range(2000):
        logger.warning("distinct message %d %s", n, "x" * 40)  # each past the last one's window
        clock.now += 11
    sizes = [p.stat().st_size for p in tmp_path.glob("plane.log*")]
    assert len(sizes) == 3 and max(sizes) <= 4096
