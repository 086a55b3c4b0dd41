"""The plane's log: a size-capped rotating file, and repeated errors logged once per window.

``configure`` sends every log record of the plane process (its own, the router's, aiohttp's,
asyncio's) to ``logs/plane.log`` through a ``RotatingFileHandler``: when the file reaches
``max_bytes`` it becomes ``plane.log.1`` (and so on up to ``backups``), so the plane's logs
never take more than ``max_bytes * (backups + 1)`` bytes (40 MiB by default).

``RepeatFilter`` keeps a flood of one failure from filling that space: a record whose
signature (logger, level, message template, exception type) was already written in the last
``window`` seconds is dropped and counted; the next record of that signature written after
the window says how many were suppressed. A traceback is written at most once per window
per signature too.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from pipeline.local.environ import env_number

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 3
WINDOW_S = 10.0
MAX_BYTES_ENV = "PIPELINE_PLANE_LOG_MAX_BYTES"
WINDOW_ENV = "PIPELINE_PLANE_LOG_REPEAT_SECONDS"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MAX_SIGNATURES = 4096  # beyond this many distinct signatures in one window, forget the oldest


class RepeatFilter(logging.Filter):
    """Lets the first record of a signature through per ``window`` seconds; counts the rest."""

    def __init__(self, window: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        exc_type = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        key = (record.name, record.levelno, str(record.msg), exc_type)
        now = self._clock()
        with self._lock:
            last, suppressed = self._seen.get(key, (float("-inf"), 0))
            if now - last < self.window:
                self._seen[key] = (last, suppressed + 1)
                return False
            if len(self._seen) >= _MAX_SIGNATURES:
                self._seen.pop(next(iter(self._seen)))
            self._seen.pop(key, None)
            self._seen[key] = (now, 0)
        if suppressed:
            record.msg = f"{record.msg} [{suppressed} similar message(s) suppressed in the last " \
                         f"{now - last:.0f}s]"
        return True


def configure(path: Path, environ: Mapping[str, str] = os.environ) -> logging.Handler:
    """Log the whole process to ``path`` (rotating, repeats suppressed); anything written to
    stderr outside logging (a crash in a thread, a warning) goes to ``path`` + ``.stderr``.

    ``$PIPELINE_PLANE_LOG_MAX_BYTES`` and ``$PIPELINE_PLANE_LOG_REPEAT_SECONDS`` override the
    size cap and the window; ValueError names a bad value.
    """
    max_bytes = int(env_number(environ, MAX_BYTES_ENV, MAX_BYTES))
    window = env_number(environ, WINDOW_ENV, WINDOW_S)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=BACKUPS,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RepeatFilter(window))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    crash = logging.getLogger("pipeline.local.plane")
    # an uncaught exception goes to the log (whose tail `pipeline local up` quotes), not to stderr
    sys.excepthook = lambda kind, exc, tb: crash.critical("the plane failed", exc_info=(kind, exc, tb))
    threading.excepthook = lambda args: crash.critical(
        "thread %s failed", args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback) if args.exc_value else None)
    stray = os.open(f"{path}.stderr", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stderr.flush()
    os.dup2(stray, 2)
    os.dup2(stray, 1)
    os.close(stray)
    return handler
