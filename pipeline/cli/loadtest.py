"""``pipeline loadtest``: run a service's locust load test against an environment and gate it.

Parse -> settings from ``service.yaml`` with command-line overrides -> ``LoadRunner`` ->
render: the summary table on stderr, the result as JSON on stdout with ``--json``. Exit 0
when the gate passes, 6 (``DeploymentFailed``) when it fails.

For GitHub Actions: ``--report-dir DIR`` puts every report in DIR (for upload-artifact),
``--github-summary`` appends the markdown summary to ``$GITHUB_STEP_SUMMARY`` (only then:
a plain run inside a job leaves the job summary alone) and ``--github-output`` writes
``passed``, ``requests``, ``failures``, ``rps``, ``p95_ms`` and ``report_dir`` (with a ramp,
also ``knee_users``, 0 when no step met the thresholds, and ``first_limit``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from rich.table import Table
from rich.text import Text

from pipeline.app import App
from pipeline.cli.outputs import github_output_option, write_github_output
from pipeline.config import EnvironmentConfig, ServiceConfig
from pipeline.console.hops import hop_tables
from pipeline.console.progress import load_progress
from pipeline.console.render import emit_json, err, styled
from pipeline.core.errors import Cancelled, DeploymentFailed, PipelineError, PlatformError, UsageError
from pipeline.core.plan import serving
from pipeline.loadtest.coldstarts import ColdStartSource
from pipeline.loadtest.knee import RampOutcome
from pipeline.loadtest.ramp import ThrottleProbe, metrics_throttles
from pipeline.loadtest.report import STEP_SUMMARY_ENV, format_value
from pipeline.loadtest.result import LoadResult
from pipeline.loadtest.runner import LoadRunner
from pipeline.loadtest.settings import LoadSettings, Thresholds, settings_from_config
from pipeline.local.factory import chain_cold_starts
from pipeline.local.plane.control_client import PlaneClient
from pipeline.local.plane.lifecycle import state_dir_of
from pipeline.local.traces import LocalTraces


@click.command()
@click.argument("service")
@click.option("--env", "env_name", required=True, help="Environment whose router is loaded.")
@click.option("--target", metavar="URL", help="Base URL to load instead of the environment's router.")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Run distributed: a master and N worker processes on this machine.",
)
@click.option("--users", type=click.IntRange(min=1), help="Simulated users (default: load.users).")
@click.option("--spawn-rate", type=click.FloatRange(min=0, min_open=True), help="Users started per second.")
@click.option("--duration", metavar="DURATION", help="Run time, e.g. 30s or 2m (default: load.duration).")
@click.option("--user-class", metavar="NAME", help="Locust user class to run (default: all in the file).")
@click.option(
    "--locustfile", type=click.Path(dir_okay=False, path_type=Path), help="Override load.locustfile."
)
@click.option("--fail-ratio", type=click.FloatRange(0, 1), help="Gate: highest failed/all ratio, e.g. 0.01.")
@click.option("--p95-ms", type=click.FloatRange(min=0), help="Gate: highest p95 response time in ms.")
@click.option("--min-rps", type=click.FloatRange(min=0), help="Gate: lowest throughput in requests/s.")
@click.option(
    "--report-dir",
    "--reports",
    "reports",
    type=click.Path(file_okay=False, path_type=Path),
    help="Report folder (default: reports/SERVICE/ENV/TIMESTAMP).",
)
@click.option(
    "--github-summary", is_flag=True, help="Append the markdown summary to $GITHUB_STEP_SUMMARY."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@github_output_option
@click.pass_obj
def loadtest(
    app: App,
    /,
    service: str,
    env_name: str,
    target: str | None,
    workers: int,
    reports: Path | None,
    github_summary: bool,
    as_json: bool,
    github_output: bool,
    **overrides: Any,
) -> None:
    """Load SERVICE in ENV with locust and gate on failures, p95 latency and throughput.

    GitHub outputs: passed, requests, failures, rps, p95_ms, report_dir.
    """
    environ = runner_environ(github_summary)
    env = app.environment(env_name)
    settings = resolve_settings(app.project.service(service), overrides)
    url = target or router_url(env, env_name)
    check_reachable(url, "the target" if target else f"{env_name}'s router")
    on_workers = f" on {workers} workers" if workers else ""
    shape = f"{settings.users} users for {settings.duration:g} s"
    if settings.ramp is not None:
        r = settings.ramp
        shape = f"ramp {r.start} → {r.stop} users by {r.step}, {r.step_duration:g} s a step"
    err.print(Text.assemble("loading ", (service, "bold"), f" at {url}: {shape}{on_workers}"))
    try:
        runner = LoadRunner(app.root, environ=environ)
        folder = reports.resolve() if reports else None
        with app.traced(env_name, f"loadtest {service}", **{"pipeline.service": service}) as facts, \
                load_progress(err, service):  # live requests, failures and rps on stderr
            traces = local_traces(app, env, env_name, service, target)
            result = runner.run(service, env_name, url, settings, workers=workers, reports=folder,
                                traces=traces, stable=stable_releases(app, env_name) if traces else None,
                                throttles=function_throttles(app, env, service, settings, target),
                                cold_starts=local_cold_starts(app, env, env_name, service, target))
            facts.update({"pipeline.outcome": "passed" if result.passed else "failed",
                          "load.requests": result.figures.requests, "load.p95_ms": result.figures.p95_ms})
    except KeyboardInterrupt:
        raise Cancelled(
            f"load test of {service} interrupted: every locust process was stopped",
            hint="partial reports may be in the reports folder",
        ) from None
    err.print(summary_table(result))
    if result.hops is not None:  # where the time went per release, hops that grew in red
        for table in hop_tables(result.hops):
            err.print(table)
        if result.hops.headline:
            err.print(styled("hop grew", "bold red", result.hops.headline.removeprefix("hop grew")),
                      soft_wrap=True)
    if result.ramp is not None:
        err.print(ramp_table(result.ramp))
        err.print(Text(f"{result.ramp.headline}: {result.ramp.limit.evidence}"), soft_wrap=True)
    f = result.figures
    err.print(
        f"{f.requests} requests in {f.duration_s:g} s · p50 {f.p50_ms:g} ms · p99 {f.p99_ms:g} ms · "
        f"reports in {result.reports.directory}",
        soft_wrap=True,
    )
    if as_json:
        emit_json(result.to_dict())
    if github_output:
        write_github_output(load_outputs(result))
    if not result.passed:
        samples = result.failure_samples
        frequent = f"; most frequent failure: {samples[0].describe()}" if samples else ""
        raise DeploymentFailed(
            f"load test of {service} in {env_name} failed: {'; '.join(result.reasons)}{frequent}",
            hint=f"see {result.reports.html} and {result.reports.markdown}",
        )


def runner_environ(github_summary: bool) -> dict[str, str]:
    """The environment of the load run: ``$GITHUB_STEP_SUMMARY`` only with ``--github-summary``
    (UsageError when that is asked for but the variable is unset)."""
    environ = dict(os.environ)
    summary = environ.pop(STEP_SUMMARY_ENV, "")
    if github_summary:
        if not summary:
            raise UsageError(
                f"--github-summary needs ${STEP_SUMMARY_ENV}, which GitHub Actions sets in every step",
                hint=f"drop --github-summary outside GitHub Actions, or set {STEP_SUMMARY_ENV}=FILE",
            )
        environ[STEP_SUMMARY_ENV] = summary
    return environ


def load_outputs(result: LoadResult) -> dict[str, object]:
    """The step outputs of a load run (times in ms, throughput in requests/s)."""
    f = result.figures
    return {
        "passed": result.passed,
        "requests": f.requests,
        "failures": f.failures,
        "rps": round(f.rps, 3),
        "p95_ms": round(f.p95_ms, 3),
        "report_dir": str(result.reports.directory),
        **(
            {"knee_users": result.ramp.knee or 0, "first_limit": result.ramp.limit.kind}
            if result.ramp is not None
            else {}
        ),
        **({"grown_hops": ", ".join(c.hop for _, c in result.hops.flagged)} if result.hops is not None
           else {}),
    }


def resolve_settings(service: ServiceConfig, overrides: dict[str, Any]) -> LoadSettings:
    """The service's ``load:`` settings with command-line overrides on top.

    ``UsageError`` when the service has no ``load:`` section and no ``--locustfile`` is given,
    or when a duration cannot be parsed.
    """
    base = settings_from_config(service.load)
    locustfile: Path | None = overrides.get("locustfile")
    if base is None:
        if locustfile is None:
            raise UsageError(
                f"{service.name} has no load test: its service.yaml has no `load:` section",
                hint="add one (locustfile, users, duration, thresholds) or pass --locustfile",
            )
        base = LoadSettings(locustfile=locustfile)
    elif locustfile is not None:
        base = replace(base, locustfile=locustfile)
    limits = base.thresholds
    thresholds = Thresholds(
        fail_ratio=_pick(overrides.get("fail_ratio"), limits.fail_ratio),
        p95_ms=_pick(overrides.get("p95_ms"), limits.p95_ms),
        min_rps=_pick(overrides.get("min_rps"), limits.min_rps),
    )
    return base.override(
        users=overrides.get("users"),
        spawn_rate=overrides.get("spawn_rate"),
        duration=_duration(overrides.get("duration")),
        user_class=overrides.get("user_class"),
        thresholds=thresholds,
    )


def local_traces(app: App, env: EnvironmentConfig, env_name: str, service: str,
                 target: str | None) -> LocalTraces | None:
    """The span store of a local environment's plane, for the "where the time goes" report
    (None for AWS, and for a --target that need not be the environment's router)."""
    if env.local is None or target:
        return None
    return LocalTraces(state_dir_of(app.root), env_name, service)


def local_cold_starts(app: App, env: EnvironmentConfig, env_name: str, service: str,
                      target: str | None) -> ColdStartSource | None:
    """The Lambda functions of the request chain ``service`` heads on a local environment's
    plane, for the cold-start lines (None for AWS, a --target, or without Lambda functions)."""
    if env.local is None or target:
        return None
    state_dir = state_dir_of(app.root)
    return chain_cold_starts(app.project, env_name, service, lambda: PlaneClient.for_state_dir(state_dir))


def function_throttles(app: App, env: EnvironmentConfig, service: str, settings: LoadSettings,
                       target: str | None) -> ThrottleProbe | None:
    """For a ramp of a Lambda service through its environment's router: the function's
    throttles per step from the platform's Metrics port (None otherwise, or when the
    platform cannot be reached: the ramp then counts the throttles it sees in answers)."""
    config = app.project.service(service)
    if settings.ramp is None or config.kind != "lambda" or target:
        return None
    try:
        return metrics_throttles(app.factory(env).platform(env, config).metrics)
    except PipelineError as exc:
        err.print(Text(f"the ramp counts throttles from answers only: {exc.message}"), soft_wrap=True)
        return None


def stable_releases(app: App, env_name: str) -> dict[str, tuple[str, str]]:
    """(slot, release version) serving each service in ``env_name`` per its last deployment
    (the stable one while a deployment is under way): the baseline of the hop report."""
    store = app.store(env_name)
    found: dict[str, tuple[str, str]] = {}
    for svc in sorted(app.project.services):
        release, slot = serving(store.load(app.ref(svc, env_name)))
        if release is not None and slot is not None:
            found[svc] = (slot.value, release.version)
    return found


def router_url(env: EnvironmentConfig, env_name: str) -> str:
    """The base URL of an environment's router: the local router's port, or ``aws.url``."""
    if env.local is not None:
        return f"http://127.0.0.1:{env.local.port}"
    url = env.aws.url if env.aws is not None else None
    if not url:
        raise UsageError(
            f"no URL to load for {env_name}: its aws section has no `url`",
            hint=f"set environments.{env_name}.aws.url in pipeline.yaml, or pass --target URL",
        )
    return str(url)


def check_reachable(url: str, what: str) -> None:
    """Fail fast, before starting locust, when nothing accepts connections at ``url``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return  # the runner reports malformed targets
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=3).close()
    except OSError as exc:
        raise PlatformError(
            f"nothing answers at {url} ({what}): {exc.strerror or exc}",
            hint="start the platform (`pipeline local up`) and deploy the service, or pass --target URL",
        ) from exc


def summary_table(result: LoadResult) -> Table:
    """The gate as a rich table: measured figures against thresholds, pass or fail."""
    verdict = styled("passed", "bold green") if result.passed else styled("failed", "bold red")
    title = Text.assemble(f"load test of {result.service} @ {result.environment}: ", verdict)
    table = Table(title=title, title_justify="left")
    for column in ("check", "measured", "threshold", "result"):
        table.add_column(column)
    for check in result.checks:
        bound = "≥" if check.bound == ">=" else "≤"
        mark = styled("pass", "green") if check.passed else styled("fail", "red")
        table.add_row(
            Text(check.label),
            format_value(check.name, check.value),
            f"{bound} {format_value(check.name, check.limit)}",
            mark,
        )
    return table


def ramp_table(outcome: RampOutcome) -> Table:
    """A ramp's steps: load, figures, throttles and whether each met the thresholds."""
    table = Table(title="ramp steps", title_justify="left")
    columns = ("users", "requests", "failures", "req/s", "p95 ms", "429 edge", "429 function", "5xx")
    for column in columns:
        table.add_column(column, justify="right")
    table.add_column("result")
    for v in outcome.verdicts:
        s = v.step
        mark = styled("pass", "green") if v.passed else styled("fail", "red", f" {'; '.join(v.reasons)}")
        table.add_row(str(s.users), str(s.requests), str(s.failures), f"{s.rps:g}", f"{s.p95_ms:g}",
                      str(s.key_throttled), str(s.function_throttled), str(s.server_errors), mark)
    return table


def _pick(override: float | None, configured: float | None) -> float | None:
    return configured if override is None else float(override)


def _duration(text: str | None) -> float | None:
    if text is None:
        return None
    from pipeline.config import parse_duration

    if text.replace(".", "", 1).isdigit():
        return float(text)  # plain seconds on the command line
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"invalid --duration {text!r}: {exc}", hint="use e.g. 30s, 2m or 90") from exc
