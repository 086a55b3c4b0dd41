"""``ServiceStageRunner``: the ``StageRunner`` port for one service in one environment.

- ``run("load", endpoint, timeout)`` runs the service's load test (``LoadRunner``) against
  the endpoint and passes when its gate passes; a service without a ``load:`` section
  passes with a summary saying so.
- ``run("test", endpoint, timeout)`` runs the smoke command when one is configured (exit 0
  passes; ``TARGET_URL`` names the endpoint), else HTTP checks through the endpoint: the
  health path for an ECS service (expecting 200), each smoke event for a Lambda function
  (expecting 2xx).

Every outcome is a ``StageResult`` (verdicts are data): a stage that cannot run (missing
locustfile, locust crash, timeout) fails with the reason instead of raising, so the engine
rolls back at once rather than retrying a broken setup. Runs are independent; running a
stage again runs it again, with a new report folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.core.model import StageResult
from pipeline.core.ports import Traces
from pipeline.loadtest.coldstarts import ColdStartSource
from pipeline.loadtest.report import new_report_dir
from pipeline.loadtest.runner import LoadRunner
from pipeline.loadtest.settings import LoadSettings, settings_from_config
from pipeline.loadtest.smoke import (
    SmokeOutcome,
    SmokeRequest,
    check_all,
    route_prefix,
    routed_path,
    run_command,
)


class ServiceStageRunner:
    """Test and load stages of ``service``; see the module docstring.

    ``route`` is the service's path pattern (``/orders*``): health paths outside it are
    requested under its prefix. ``health_path`` None means no health check (Lambda).
    Reports go to ``reports_root/<service>/<environment>/<timestamp>/`` (default
    ``root/reports``).
    """

    def __init__(
        self,
        service: str,
        *,
        root: Path,
        environment: str = "",
        load: LoadSettings | None = None,
        route: str = "/*",
        health_path: str | None = "/health",
        smoke_command: str | None = None,
        smoke_requests: Sequence[SmokeRequest] = (),
        reports_root: Path | None = None,
        workers: int = 0,
        environ: Mapping[str, str] | None = None,
        traces: Traces | None = None,
        cold_starts: ColdStartSource | None = None,
    ) -> None:
        self.service = service
        self.root = Path(root)
        self.environment = environment
        self.load = load
        self.route = route
        self.health_path = health_path
        self.smoke_command = smoke_command
        self.smoke_requests = tuple(smoke_requests)
        self.reports_root = reports_root if reports_root is not None else self.root / "reports"
        self.workers = workers
        self.traces = traces  # read after a load stage: where its time went per release
        self.cold_starts = cold_starts  # the Lambda functions of the request chain it loads
        self.environ = dict(os.environ if environ is None else environ)
        self.runner = LoadRunner(self.root, reports_root=self.reports_root, environ=self.environ)

    @classmethod
    def from_config(
        cls, project: Any, service: str | Any, environment: str = "", *, workers: int = 0,
        traces: Traces | None = None, cold_starts: ColdStartSource | None = None,
    ) -> ServiceStageRunner:
        """The stages of ``service`` (a name or a ``ServiceConfig``) as ``project`` (a
        ``pipeline.config.Project``) configures them. Reads ``load``, ``ecs.health_check.path``,
        ``ecs.route`` / ``lambda.route``, ``lambda.smoke_events`` and, if the config offers
        it, ``test.smoke`` (a shell command). ``NotFoundError`` for an unknown service."""
        svc = project.service(service if isinstance(service, str) else service.name)
        lambda_cfg = getattr(svc, "lambda_", None)
        route = str(svc.route.path)
        events = tuple(lambda_cfg.smoke_events) if lambda_cfg is not None else ()
        return cls(
            str(svc.name),
            root=Path(project.root),
            environment=environment,
            load=settings_from_config(svc.load),
            route=route,
            health_path=str(svc.ecs.health_check.path) if svc.ecs is not None else None,
            smoke_command=getattr(svc.test, "smoke", None),
            smoke_requests=[SmokeRequest.from_event(e, route_prefix(route) or "/") for e in events],
            workers=workers,
            traces=traces,
            cold_starts=cold_starts,
        )

    def run(self, stage: str, endpoint: str, timeout: float) -> StageResult:
        """Run ``stage`` ("test" or "load") against ``endpoint`` within ``timeout`` seconds."""
        try:
            if stage == "load":
                return self._load(endpoint, timeout)
            if stage == "test":
                return self._test(endpoint, timeout)
        except PipelineError as exc:
            return StageResult(False, f"{stage} stage of {self.service} could not run: {exc.render()}")
        return StageResult(False, f"unknown stage {stage!r}: expected 'test' or 'load'")

    # --- load ----------------------------------------------------------------------

    def _load(self, endpoint: str, timeout: float) -> StageResult:
        if self.load is None:
            return StageResult(
                True, f"{self.service} has no load: section in service.yaml; load stage skipped"
            )
        result = self.runner.run(
            self.service, self.environment, endpoint, self.load, workers=self.workers, timeout=timeout,
            traces=self.traces, cold_starts=self.cold_starts,
        )
        return StageResult(result.passed, result.headline, str(result.reports.markdown))

    # --- test ----------------------------------------------------------------------

    def _test(self, endpoint: str, timeout: float) -> StageResult:
        folder = new_report_dir(self.reports_root, self.service, self.environment)
        if self.smoke_command:
            return self._command(self.smoke_command, endpoint, timeout, folder)
        requests = self.smoke_requests or self._health_requests()
        if not requests:
            return StageResult(
                True, f"{self.service} configures no smoke checks: the test stage checked nothing"
            )
        outcomes = check_all(endpoint, requests, timeout)
        report = folder / "smoke.md"
        report.write_text(smoke_markdown(self.service, endpoint, outcomes), encoding="utf-8")
        failed = [o for o in outcomes if not o.passed]
        if failed:
            detail = "; ".join(f"{o.request.describe()}: {o.detail}" for o in failed)
            return StageResult(False, f"smoke test of {self.service} failed: {detail}", str(report))
        checked = ", ".join(f"{o.request.describe()} {o.status}" for o in outcomes)
        return StageResult(True, f"smoke test of {self.service} passed: {checked}", str(report))

    def _health_requests(self) -> tuple[SmokeRequest, ...]:
        if self.health_path is None:
            return ()
        return (SmokeRequest("GET", routed_path(self.route, self.health_path), expect=(200,)),)

    def _command(self, command: str, endpoint: str, timeout: float, folder: Path) -> StageResult:
        outcome = run_command(
            command,
            endpoint=endpoint,
            cwd=self.root,
            log=folder / "smoke.log",
            timeout=timeout,
            environ=self.environ,
        )
        if outcome.passed:
            return StageResult(True, f"smoke command of {self.service} passed", str(outcome.log))
        why = "timed out and was stopped" if outcome.exit_code is None else f"exited {outcome.exit_code}"
        last = outcome.output.strip().splitlines()[-3:]
        return StageResult(
            False,
            f"smoke command of {self.service} {why}: {' | '.join(last) or 'no output'}",
            str(outcome.log),
        )


def smoke_markdown(service: str, endpoint: str, outcomes: Sequence[SmokeOutcome]) -> str:
    """The test stage's report: one row per request."""
    verdict = "✅ passed" if all(o.passed for o in outcomes) else "❌ failed"
    rows = [f"| {o.request.describe()} | {o.detail} | {o.elapsed_ms:g} ms |" for o in outcomes]
    return "\n".join(
        [f"### Smoke test: {service} — {verdict}", "", f"Endpoint `{endpoint}`", "",
         "| request | result | time |", "|---|---|---:|", *rows, ""]
    )  # fmt: skip
