"""Locust command lines: one process, or a master and its workers on loopback.

Failures never change locust's exit code (``--exit-code-on-error 0``): they are the gate's
business, so a non-zero exit means locust itself went wrong. Only the process whose
statistics are gated (the single process, or the master) writes reports. A ramp adds
the step shape to the locustfiles and leaves users and time to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.loadtest.result import ReportPaths
from pipeline.loadtest.settings import LoadSettings

WORKER_JOIN_WAIT = 30
"""Seconds the master waits for its workers before giving up."""

RAMP_SHAPE = Path(__file__).with_name("ramp_shape.py")
"""The step-load shape class locust runs with a ramp's locustfile (never imported here)."""


@dataclass(frozen=True, slots=True)
class LocustCommand:
    """How to run ``locustfile`` against ``target`` with ``python -m locust``."""

    python: str
    locustfile: Path
    target: str
    settings: LoadSettings

    def single(self, paths: ReportPaths) -> list[str]:
        """A headless run in one process, writing every report into ``paths``."""
        s = self.settings
        shape = [] if s.ramp is not None else [  # a ramp's shape sets users and time itself
            "--users", str(s.users),
            "--spawn-rate", f"{s.spawn_rate:g}",
            "--run-time", f"{max(1, round(s.duration))}s",
        ]
        return [
            *self._base(),
            "--headless",
            *shape,
            "--only-summary",
            "--exit-code-on-error", "0",
            "--json-file", str(paths.json_prefix),
            "--csv", str(paths.csv_prefix),
            "--html", str(paths.html),
            *self._user_classes(),
        ]  # fmt: skip

    def master(self, paths: ReportPaths, port: int, workers: int) -> list[str]:
        """The single run as a master bound to 127.0.0.1:``port`` that waits for ``workers``."""
        return [
            *self.single(paths),
            "--master",
            "--master-bind-host", "127.0.0.1",
            "--master-bind-port", str(port),
            "--expect-workers", str(workers),
            "--expect-workers-max-wait", str(WORKER_JOIN_WAIT),
        ]  # fmt: skip

    def worker(self, port: int) -> list[str]:
        """A worker of the master at 127.0.0.1:``port``; the master drives users and time."""
        return [
            *self._base(),
            "--worker",
            "--master-host", "127.0.0.1",
            "--master-port", str(port),
            *self._user_classes(),
        ]  # fmt: skip

    def _base(self) -> list[str]:
        return [
            self.python,
            "-m",
            "locust",
            "-f",
            self._locustfiles(),
            "--host",
            self.target,
            "--loglevel",
            "INFO",
        ]

    def _locustfiles(self) -> str:
        """The locustfile; for a ramp, the step shape first (see ``ramp_shape``)."""
        if self.settings.ramp is None:
            return str(self.locustfile)
        return f"{RAMP_SHAPE},{self.locustfile}"

    def _user_classes(self) -> list[str]:
        return [self.settings.user_class] if self.settings.user_class else []
