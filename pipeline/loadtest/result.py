"""The outcome of one load run: figures, the gate's checks and where the reports are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.loadtest.coldstarts import ColdStartReport
from pipeline.loadtest.gates import GateCheck, reasons
from pipeline.loadtest.hops import HopReport
from pipeline.loadtest.knee import RampOutcome
from pipeline.loadtest.settings import LoadSettings
from pipeline.loadtest.stats import FailureSample, LoadFigures


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Files of one run, all inside ``directory`` (``reports/<service>/<env>/<timestamp>/``).

    ``csv_prefix`` is what locust's ``--csv`` received: it writes ``<prefix>_stats.csv``,
    ``<prefix>_stats_history.csv``, ``<prefix>_failures.csv`` and ``<prefix>_exceptions.csv``.
    """

    directory: Path

    @property
    def html(self) -> Path:
        return self.directory / "report.html"

    @property
    def csv_prefix(self) -> Path:
        return self.directory / "stats"

    @property
    def csv_stats(self) -> Path:
        return self.directory / "stats_stats.csv"

    @property
    def csv_failures(self) -> Path:
        return self.directory / "stats_failures.csv"

    @property
    def json_prefix(self) -> Path:
        """What ``--json-file`` receives; locust appends ``.json``."""
        return self.directory / "stats"

    @property
    def json(self) -> Path:
        return self.directory / "stats.json"

    @property
    def markdown(self) -> Path:
        return self.directory / "summary.md"

    @property
    def steps(self) -> Path:
        """A ramp's steps as the step shape recorded them (``ramp.read_steps``)."""
        return self.directory / "ramp_steps.json"

    @property
    def result(self) -> Path:
        """This result as JSON (``LoadResult.to_dict``)."""
        return self.directory / "result.json"

    def log(self, role: str) -> Path:
        """Output of one locust process: ``locust.log``, ``master.log`` or ``worker-<n>.log``."""
        return self.directory / f"{role}.log"

    def to_dict(self) -> dict[str, str]:
        return {
            "directory": str(self.directory),
            "html": str(self.html),
            "csv": str(self.csv_stats),
            "json": str(self.json),
            "markdown": str(self.markdown),
        }


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One gated load run. ``passed`` holds when every check passed; ``reasons`` says why not."""

    service: str
    environment: str
    target: str
    settings: LoadSettings
    workers: int
    figures: LoadFigures
    checks: tuple[GateCheck, ...]
    reports: ReportPaths
    exit_code: int = 0
    failure_samples: tuple[FailureSample, ...] = ()  # diagnostics, most frequent first
    ramp: RampOutcome | None = None  # a step-load run: its steps, knee and first limit
    hops: HopReport | None = None  # where the time goes per release (None: no traces read)
    cold_starts: ColdStartReport | None = None  # per function and chain (None: not measured)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def reasons(self) -> tuple[str, ...]:
        return reasons(self.checks)

    @property
    def headline(self) -> str:
        """One line for stage results and logs."""
        f = self.figures
        verdict = "passed" if self.passed else "failed: " + "; ".join(self.reasons)
        line = (
            f"load test of {self.service} {verdict} ({f.requests} requests, "
            f"{f.fail_ratio:.2%} failed, p95 {f.p95_ms:g} ms, {f.rps:g} req/s)"
        )
        if self.ramp is not None:
            line += f"; {self.ramp.headline}"
        if self.hops is not None and self.hops.headline:
            line += f"; {self.hops.headline}"
        if self.cold_starts is not None:
            line += f"; {self.cold_starts.headline}"
        if not self.passed and self.failure_samples:
            line += f"; most frequent failure: {self.failure_samples[0].describe()}"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "environment": self.environment,
            "target": self.target,
            "passed": self.passed,
            "reasons": list(self.reasons),
            "workers": self.workers,
            "settings": self.settings.to_dict(),
            "figures": self.figures.to_dict(),
            "checks": [check.to_dict() for check in self.checks],
            "reports": self.reports.to_dict(),
            "locust_exit_code": self.exit_code,
            "top_failures": [sample.to_dict() for sample in self.failure_samples],
            "ramp": self.ramp.to_dict() if self.ramp is not None else None,
            "hops": self.hops.to_dict() if self.hops is not None else None,
            "cold_starts": self.cold_starts.to_dict() if self.cold_starts is not None else None,
        }
