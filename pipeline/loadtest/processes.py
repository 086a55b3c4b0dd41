"""Locust processes on this machine: started together, awaited with a deadline, always reaped.

Every process gets its own session (process group), so a Ctrl-C in the terminal reaches
only the orchestrator, which then stops the whole group itself: SIGTERM (locust writes its
reports and exits), then SIGKILL after a grace period. ``ProcessGroup`` is a context
manager; leaving it by any path (return, timeout, exception, KeyboardInterrupt) leaves no
process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from pipeline.core.errors import PlatformError

GRACE_SECONDS = 5.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ProcessGroup:
    """Child processes with their output in log files, cleaned up as one."""

    def __init__(self, *, cwd: Path, env: Mapping[str, str], grace: float = GRACE_SECONDS) -> None:
        self._cwd = cwd
        self._env = dict(env)
        self._grace = grace
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``argv`` with stdout and stderr going to ``log``; ``PlatformError`` if it
        cannot be started."""
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    list(argv),
                    cwd=self._cwd,
                    env=self._env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            raise PlatformError(
                f"cannot start {argv[0]}: {exc.strerror or exc}",
                hint="check that the interpreter and the working folder exist and are accessible",
            ) from exc
        self._procs.append(proc)
        return proc

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs]

    def wait(self, proc: subprocess.Popen[bytes], deadline: float) -> int | None:
        """``proc``'s exit code, or None if it is still running at ``deadline`` (monotonic)."""
        try:
            return proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return None

    def wait_all(self, deadline: float) -> None:
        """Give every process until ``deadline`` (monotonic) to exit on its own."""
        for proc in self._procs:
            self.wait(proc, deadline)

    def stop(self) -> None:
        """Terminate every process still running: SIGTERM, then SIGKILL after the grace.
        Idempotent."""
        running = [proc for proc in self._procs if proc.poll() is None]
        for proc in running:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        for proc in running:
            if self.wait(proc, deadline) is None:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        for proc in self._procs:
            if proc.poll() is None:  # pragma: no cover - SIGKILL above cannot be ignored
                proc.wait()

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(proc.pid, sig)


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file ('' when it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
