"""When a replica is clearly unable to start, and the words that say why.

A release whose replicas crash on start, or whose health check keeps answering an error,
will not become ready however long the deployment waits. ``StartFailures`` watches one
replica's runs and checks and sets ``failure`` as soon as that is clear:

- ``CRASH_LOOP_RUNS`` runs in a row ended (the process exited, could not be started, or
  was replaced) without a passing health check: the reason quotes how the last run ended
  and the last ``TAIL_LINES`` lines it wrote to its log (stdout and stderr);
- the process runs and its health check answered an HTTP error (not "connection refused",
  which only means it is still starting) for ``unhealthy_threshold`` checks spanning at
  least ``unhealthy_threshold * interval`` seconds: the reason quotes the answer.

A passing check clears it. Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.local.specs import HealthCheck

CRASH_LOOP_RUNS = 3
TAIL_LINES = 5
LINE_CHARS = 200
_TAIL_BYTES = 16 * 1024


class StartFailures:
    """The start verdict of replica ``index``, whose runs append to ``log_path``."""

    def __init__(self, index: int, log_path: Path, health: HealthCheck) -> None:
        self.index = index
        self.log_path = log_path
        self.health = health
        self.failure = ""  # why the replica cannot start; "" while that is not clear
        self.failed_runs = 0  # runs in a row that ended without a passing check
        self._passed = False  # the current run passed a check
        self._offset = 0  # where the current run's output starts in the log
        self._answered = 0  # error answers in a row in the current run
        self._answered_since = 0.0

    def run_started(self) -> None:
        """A new run begins: its output is what the log gets from now on."""
        try:
            offset = self.log_path.stat().st_size
        except OSError:
            offset = 0
        self._passed, self._offset, self._answered = False, offset, 0

    def checked(self, ok: bool, why: str, status: int | None, now: float) -> None:
        """One health check: passed, or failed with ``why`` (``status`` None: no answer)."""
        if ok:
            self._passed, self.failed_runs, self.failure, self._answered = True, 0, "", 0
            return
        if status is None or self._passed:
            self._answered = 0
            return
        if not self._answered:
            self._answered_since = now
        self._answered += 1
        hc = self.health
        lasting = now - self._answered_since
        if self._answered >= hc.unhealthy_threshold and lasting >= hc.unhealthy_threshold * hc.interval:
            self.failure = f"replica {self.index} keeps failing its health check: {why}"

    def run_ended(self, how: str, *, output: bool = True) -> None:
        """The current run ended (``how``: "exited with code 3", ...) while not stopping."""
        if self._passed:
            return
        self.failed_runs += 1
        if self.failed_runs >= CRASH_LOOP_RUNS:
            tail = f"; its last output: {self.output_tail()}" if output else ""
            self.failure = (f"replica {self.index} {how}, {self.failed_runs} runs in a row without "
                            f"passing a health check{tail}")

    def output_tail(self) -> str:
        """The last ``TAIL_LINES`` non-empty lines the current run wrote to its log."""
        try:
            with self.log_path.open("rb") as log:
                end = log.seek(0, 2)
                log.seek(max(self._offset, end - _TAIL_BYTES))
                text = log.read().decode(errors="replace")
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc.strerror})"
        lines = [line.rstrip()[:LINE_CHARS] for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-TAIL_LINES:]) or "(nothing)"
