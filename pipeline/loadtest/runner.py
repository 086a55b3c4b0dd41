"""``LoadRunner``: locust in subprocesses against a target URL, gated on its JSON statistics.

Locust is never imported here: it monkey-patches the standard library with gevent, and
importing it after boto3/requests crashes with RecursionError. It runs as
``python -m locust`` headless, writing HTML, CSV and JSON reports into the run's report
folder; the gate then reads the JSON (``stats``), judges it (``gates``) and writes the
markdown summary (``report``).

With ``workers=N`` (N >= 1) locust runs distributed on loopback: one master bound to
127.0.0.1 on a free port, expecting N worker processes; the gate reads the master's
statistics, which aggregate every worker's requests.

Every process is stopped on return, timeout, error and Ctrl-C (see ``processes``). While
locust runs, a watcher set with ``live.watching`` receives its figures every second.

With a ``Traces`` source (the local platform's span store), the run's traces are read
afterwards and the report says where their time went per release, flagging hops that grew
against the stable release (``hops``).

A ramp (``settings.ramp``) runs the step shape (``ramp_shape``) with the locustfile; its
gate is the knee (``knee``) instead of the whole run's thresholds, which a ramp is meant
to cross.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from pipeline.core.errors import NotFoundError, PipelineError, PlatformError, UsageError
from pipeline.core.ports import Traces
from pipeline.loadtest.coldstarts import ColdStartSource, cold_start_report
from pipeline.loadtest.command import LocustCommand
from pipeline.loadtest.gates import GateCheck, evaluate
from pipeline.loadtest.hops import HopReport, hop_report
from pipeline.loadtest.knee import RampOutcome, analyse
from pipeline.loadtest.live import follow
from pipeline.loadtest.processes import ProcessGroup, free_port, tail
from pipeline.loadtest.ramp import PLAN_ENV, STEPS_ENV, ThrottleProbe, read_steps, with_function_throttles
from pipeline.loadtest.report import new_report_dir, write_reports
from pipeline.loadtest.result import LoadResult, ReportPaths
from pipeline.loadtest.settings import LoadSettings, Thresholds
from pipeline.loadtest.stats import LoadFigures, read_failure_samples, read_figures

STARTUP_MARGIN = 15.0
"""Seconds a run may take beyond its duration: interpreter start, workers joining, shutdown."""

SPANS_SETTLE = 1.0
"""Seconds between the end of a run and reading its traces: services export spans in
batches every 0.5 s, so the last requests' spans arrive that much later."""

WORKER_EXIT_WAIT = 5.0
"""Seconds workers get to exit on their own after the master finished, before SIGTERM."""


class LoadRunner:
    """Runs load tests from the project at ``root`` with this Python interpreter.

    Reports go to ``reports_root/<service>/<environment>/<UTC timestamp>/`` (default
    ``root/reports``) unless a run names its own folder. Each run is independent; a runner
    holds no state between runs and may be shared.
    """

    def __init__(
        self,
        root: Path,
        *,
        reports_root: Path | None = None,
        python: str = sys.executable,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.reports_root = reports_root if reports_root is not None else self.root / "reports"
        self.python = python
        self.environ = dict(os.environ if environ is None else environ)

    def run(
        self,
        service: str,
        environment: str,
        target: str,
        settings: LoadSettings,
        *,
        workers: int = 0,
        timeout: float | None = None,
        reports: Path | None = None,
        traces: Traces | None = None,
        stable: Mapping[str, tuple[str, str]] | None = None,
        throttles: ThrottleProbe | None = None,
        cold_starts: ColdStartSource | None = None,
    ) -> LoadResult:
        """Load ``target`` (a base URL) as ``settings`` say and gate on the result.

        ``timeout`` (seconds, default duration + ``STARTUP_MARGIN``) bounds the whole run.
        Returns a ``LoadResult`` whether or not the gate passed. Raises ``NotFoundError``
        for a missing locustfile, ``UsageError`` for a bad target or worker count, and
        ``PlatformError`` when locust times out or writes no statistics. ``traces``: where to
        read the run's traces for the "where the time goes" report (None: no such report);
        ``stable``: the (slot, release) serving each service, that report's baseline.
        ``throttles`` (ramps only) counts the platform's Lambda throttles in a step's window.
        ``cold_starts``: the Lambda functions of the request chain, for the cold-start lines.
        """
        locustfile = self._locustfile(service, settings)
        _check_target(target)
        if workers < 0:
            raise UsageError(f"--workers must be 0 or more, got {workers}", hint="0 runs one local process")
        budget = settings.duration + STARTUP_MARGIN if timeout is None else timeout
        if budget < settings.duration + 1:
            raise PlatformError(
                f"load test of {service} cannot finish in time: it runs {settings.duration:g} s "
                f"but only {budget:g} s are allowed",
                hint="shorten load.duration or raise the stage timeout (deploy.timeouts.stage)",
            )
        paths = ReportPaths(reports or new_report_dir(self.reports_root, service, environment))
        paths.directory.mkdir(parents=True, exist_ok=True)
        paths.json.unlink(missing_ok=True)  # never gate on a previous run's statistics
        paths.steps.unlink(missing_ok=True)
        command = LocustCommand(self.python, locustfile, target, settings)
        started = time.time()
        live_cold = _live_cold_starts(cold_starts, started)
        exit_code = self._execute(service, command, workers, budget, paths, live_cold)
        hops = _hops(traces, started, time.time(), stable)
        cold = cold_start_report(cold_starts, started, time.time())
        figures = read_figures(paths.json)
        ramp = None
        if settings.ramp is not None:
            steps = read_steps(paths.steps)
            if throttles is not None:
                steps = with_function_throttles(steps, throttles)
            ramp = analyse(settings.ramp, steps, settings.thresholds)
        result = LoadResult(
            service=service,
            environment=environment,
            target=target,
            settings=settings,
            workers=workers,
            figures=figures,
            checks=_checks(figures, settings, ramp),
            reports=paths,
            exit_code=exit_code,
            failure_samples=read_failure_samples(paths.csv_failures) if figures.failures else (),
            ramp=ramp,
            hops=hops,
            cold_starts=cold,
        )
        write_reports(result, self.environ)
        return result

    # --- internals -----------------------------------------------------------------

    def _execute(
        self, service: str, command: LocustCommand, workers: int, budget: float, paths: ReportPaths,
        cold_starts: Callable[[], str] | None = None,
    ) -> int:
        """Run locust to completion; its exit code. Stops everything on any way out."""
        deadline = time.monotonic() + budget
        log = paths.log("master" if workers else "locust")
        env = {**self.environ, "PYTHONUNBUFFERED": "1"}
        if command.settings.ramp is not None:  # read by ramp_shape.py inside locust
            env[PLAN_ENV] = command.settings.ramp.plan_json(command.settings.spawn_rate)
            env[STEPS_ENV] = str(paths.steps)
        with ProcessGroup(cwd=self.root, env=env) as group:
            if workers:
                port = free_port()
                main = group.start(command.master(paths, port, workers), log)
                for n in range(1, workers + 1):
                    group.start(command.worker(port), paths.log(f"worker-{n}"))
            else:
                main = group.start(command.single(paths), log)
            code = follow(
                lambda until: group.wait(main, until),
                deadline,
                paths.csv_stats,
                service=service,
                duration=command.settings.duration,
                cold_starts=cold_starts,
            )
            if code is not None:  # the master told its workers to quit: let them
                group.wait_all(time.monotonic() + WORKER_EXIT_WAIT)
        if code is None:
            raise PlatformError(
                f"load test of {service} timed out: locust was still running after {budget:g} s "
                "and was stopped",
                hint=f"see {log}; raise the stage timeout or shorten load.duration",
            )
        if not paths.json.exists():
            output = tail(log)
            hint = f"full output in {log}"
            if "Unknown User(s)" in output:
                hint = (
                    f"load.user_class in services/{service}/service.yaml must name a user class defined "
                    f"in {command.locustfile.name} (not a locust base class), or be removed; {hint}"
                )
            raise PlatformError(
                f"load test of {service} failed: locust exited with code {code} and wrote no statistics\n"
                + output,
                hint=hint,
            )
        return code

    def _locustfile(self, service: str, settings: LoadSettings) -> Path:
        path = settings.locustfile if settings.locustfile.is_absolute() else self.root / settings.locustfile
        if not path.is_file():
            raise NotFoundError(
                f"no locustfile for {service}: {path} does not exist",
                hint=f"create it (like loadtests/orders.py) or fix load.locustfile in "
                f"services/{service}/service.yaml",
            )
        return path


def _checks(figures: LoadFigures, settings: LoadSettings, ramp: RampOutcome | None) -> tuple[GateCheck, ...]:
    """The whole run against the thresholds; for a ramp, "any request" and the knee."""
    if ramp is None:
        return evaluate(figures, settings.thresholds)
    return (*evaluate(figures, Thresholds()), ramp.check())


def _live_cold_starts(source: ColdStartSource | None, since: float) -> Callable[[], str] | None:
    """The live view's cold-start line of the run so far ("" when it cannot be read)."""
    if source is None:
        return None

    def line() -> str:
        report = cold_start_report(source, since, time.time() + 1)
        return report.headline if report is not None else ""

    return line


def _hops(traces: Traces | None, since: float, until: float,
          stable: Mapping[str, tuple[str, str]] | None = None) -> HopReport | None:
    """The run's traces per release; None without a source or when it cannot be read (the
    load test's verdict never depends on its traces)."""
    if traces is None:
        return None
    time.sleep(SPANS_SETTLE)
    try:
        return hop_report(traces.traces(since, until), stable=stable)
    except PipelineError:
        return None


def _check_target(target: str) -> None:
    if not target.startswith(("http://", "https://")):
        raise UsageError(
            f"cannot load {target!r}: the target must be a base URL like http://127.0.0.1:8080",
            hint="pass --target URL, or deploy the service so the environment's router serves it",
        )
