"""``pipeline demo``: the whole pipeline on the local platform, narrated, in a few minutes.

Scenes, each a real deployment through the same engine and adapters as ``pipeline
deploy`` (only the strategies are shortened so the demo fits in minutes):

1. first deployment of every service to dev;
2. a good release of orders through a canary under locust load: zero failed requests;
3. a bad release (a committed fault) through a canary: analysis rolls it back;
4. a Lambda canary of notify, cold starts of the new version visible;
5. promotion of the same digest dev -> staging -> prod (refused, approved, promoted);
6. ``pipeline rollback`` in dev: back to the last good release;
7. notify behind its API edge: keys, a quota, a denied address, the cache hit ratio, and a
   canary that meets no cold start (``edge_scene``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipeline import operations as ops
from pipeline import promotion
from pipeline.app import App
from pipeline.console.render import ConsoleSink, bar, print_error, styled
from pipeline.core.analysis import AnalysisSpec, Check
from pipeline.core.errors import PipelineError, PromotionRefused
from pipeline.core.model import Release, ServiceRef, Weights
from pipeline.core.plan import Strategy
from pipeline.core.ports import Compute, Platform, Record
from pipeline.core.state import DeploymentState, Phase, Timeouts, TrafficObserved
from pipeline.core.steps import Analyze, Pause, SetWeight, canary
from pipeline.demo.edge_scene import EdgeScene
from pipeline.demo.report import SceneResult, write_report
from pipeline.demo.timeline import Sampler, Timeline
from pipeline.demo.workspace import enrol, fresh_clone, make_release
from pipeline.identity import os_account
from pipeline.loadtest.result import LoadResult
from pipeline.loadtest.runner import LoadRunner
from pipeline.loadtest.settings import LoadSettings, Thresholds
from pipeline.local.plane.lifecycle import state_dir_of, stop_plane

FAST = Timeouts(ready=90, verify=15, stage=120, hold=600, poll=0.5)
ANALYSIS = AnalysisSpec(
    checks=(Check("error_rate", 0.02), Check("p95_ms", 1000.0)),
    min_requests=15,
    window_seconds=4,
    interval_seconds=1.5,
    failure_limit=0,
    inconclusive_limit=4,
    consecutive_error_limit=3,
)
FIRST = Strategy(steps=canary(()), analysis=ANALYSIS, timeouts=FAST)
ORDERS_CANARY = Strategy(
    steps=canary((SetWeight(20), Pause(4), Analyze(), SetWeight(50), Pause(4), Analyze())),
    analysis=ANALYSIS,
    timeouts=FAST,
)
NOTIFY_CANARY = Strategy(
    steps=canary((SetWeight(10), Pause(4), Analyze(), SetWeight(50), Pause(3), Analyze())),
    analysis=dataclasses.replace(ANALYSIS, checks=(Check("error_rate", 0.02),), min_requests=5),
    timeouts=FAST,
)
LOAD_SECONDS = 30.0
DEV, STAGING, PROD = "dev", "staging", "prod"


class BackgroundLoad:
    """A locust run (subprocess, via the load-stage runner) in a thread, for one scene."""

    def __init__(self, runner: LoadRunner, service: str, target: str, users: int, seconds: float) -> None:
        settings = LoadSettings(
            locustfile=Path("loadtests") / f"{service}.py",
            users=users,
            spawn_rate=users,
            duration=seconds,
            thresholds=Thresholds(),
        )
        self._args = (runner, service, target, settings)
        self.result: LoadResult | None = None
        self.error: PipelineError | None = None
        self.started = 0.0
        self._thread = threading.Thread(target=self._main, name=f"load-{service}", daemon=True)

    def _main(self) -> None:
        try:
            runner, service, target, settings = self._args
            self.result = runner.run(service, DEV, target, settings)
        except PipelineError as exc:
            self.error = exc

    def __enter__(self) -> BackgroundLoad:
        self.started = time.time()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(timeout=LOAD_SECONDS + 90)

    @property
    def ended(self) -> float:
        return self.started + (self.result.figures.duration_s if self.result else 0.0)


class Demo:
    def __init__(self, root: Path, console: Console, *, keep_running: bool = False) -> None:
        self.root = root
        self.work = root / ".pipeline" / "demo"
        self.console = console
        self.keep_running = keep_running
        self.results: list[SceneResult] = []
        self.timelines: list[Timeline] = []
        self.workspace = root
        self._app: App | None = None  # wired to the workspace once it is cloned
        self.initial: dict[str, Release] = {}
        self.good: Release | None = None

    # --- plumbing ------------------------------------------------------------------

    @property
    def app(self) -> App:
        """The composition root over the demo's workspace (set by ``run``)."""
        assert self._app is not None
        return self._app

    def reload(self) -> None:
        """Read the workspace's configuration again (after a scene committed a change to it)."""
        self._app = App(root_hint=self.workspace)

    def ctx(self, env: str, actor: str = "alice") -> ops.Context:
        return dataclasses.replace(self.app.context(env, ConsoleSink(self.console)), actor=actor)

    def platform(self, env: str, service: str) -> Platform:
        """The adapters ``pipeline deploy`` uses for ``service`` in ``env``."""
        environment = self.app.environment(env)
        return self.app.factory(environment).platform(environment, self.app.project.service(service))

    def router_url(self, env: str) -> str:
        local = self.app.environment(env).local
        assert local is not None, f"{env} is a local environment"
        return f"http://127.0.0.1:{local.port}"

    def scene(self, name: str, expected: str, body: Callable[[], tuple[str, str]]) -> None:
        self.console.rule(Text(name, style="bold"))
        start = time.time()
        try:
            outcome, detail = body()
        except PipelineError as exc:
            outcome, detail = "error", exc.message
            print_error(exc, self.console)
        result = SceneResult(name, outcome, expected, detail, time.time() - start)
        self.results.append(result)
        style = "green" if result.ok else "red"
        self.console.print(styled(outcome, style, f" ({result.seconds:.1f}s): {detail}"), markup=False)

    def watch(self, title: str, env: str, service: str) -> tuple[Timeline, Sampler]:
        platform = self.platform(env, service)
        timeline = Timeline(title)
        self.timelines.append(timeline)
        health = self._health_of(env, service, platform.compute) if service != "notify" else None
        return timeline, Sampler(timeline, platform.router, platform.metrics, health=health)

    def _health_of(self, env: str, service: str, compute: Compute) -> Callable[[], str]:
        """Healthy/desired replicas of each slot that runs a release of the deployment."""
        store = self.app.store(env)
        ref = ServiceRef(service, env)

        def health() -> str:
            state = store.load(ref)
            if state is None:
                return ""
            parts = []
            for slot, release in ((state.new_slot, state.release), (state.old_slot, state.stable)):
                if release is not None:
                    h = compute.health(slot, release)
                    parts.append(f"{slot} {h.healthy}/{h.desired} healthy")
            return ", ".join(sorted(parts))

        return health

    def live(self, timeline: Timeline) -> Live:
        def render() -> Table:
            table = Table.grid(padding=(0, 2))
            s = timeline.samples[-1] if timeline.samples else None
            if s is None:
                table.add_row("waiting for traffic ...")
            else:
                table.add_row(
                    bar(_weights(s.blue, s.green)),
                    f"{s.rps:6.0f} req/s",
                    f"errors {s.error_rate:6.1%}",
                    Text(s.health),
                )
            return table

        return Live(get_renderable=render, console=self.console, refresh_per_second=4, transient=True)

    # --- scenes --------------------------------------------------------------------

    def run(self) -> int:
        started = time.time()
        where = f"workspace: a fresh clone of {self.root} in {self.work / 'workspace'}"
        self.console.print(where, markup=False)
        self.workspace = fresh_clone(self.root, self.work)
        enrol(self.workspace, "ops", os_account().name)  # the demo's user approves for Ops
        self._app = App(root_hint=self.workspace)
        try:
            self.scene("1. first deployment of every service to dev", "succeeded", self.first_deployments)
            self.scene("2. good canary of orders under load", "succeeded", self.good_canary)
            self.scene("3. bad canary of orders", "rolled_back", self.bad_canary)
            self.scene("4. Lambda canary of notify", "succeeded", self.lambda_canary)
            self.scene("5. promote the same digest to staging and prod", "succeeded", self.promotion)
            self.scene("6. pipeline rollback in dev", "succeeded", self.rollback)
            edge = EdgeScene(self, NOTIFY_CANARY, BackgroundLoad)
            self.scene("7. notify behind its API edge", "succeeded", edge.run)
        finally:
            if not self.keep_running:
                self.stop_plane()
        return self.summary(time.time() - started)

    def first_deployments(self) -> tuple[str, str]:
        phases = []
        for service in sorted(self.app.project.services):
            release = self.app.release(service, DEV, None, "HEAD")
            self.initial[service] = release
            state = ops.deploy(self.ctx(DEV), ServiceRef(service, DEV), release, FIRST)
            phases.append(f"{service} {state.release.short} {state.phase.value}")
        ok = all(p.endswith("succeeded") for p in phases)
        return ("succeeded" if ok else "failed"), "; ".join(phases)

    def _canary_under_load(
        self, title: str, release: Release, strategy: Strategy, service: str
    ) -> tuple[DeploymentState, BackgroundLoad, Timeline]:
        timeline, sampler = self.watch(title, DEV, service)
        runner = LoadRunner(self.workspace, reports_root=self.work / "reports",
                            environ=self._load_environ(service))
        load = BackgroundLoad(runner, service, self.router_url(DEV), users=10, seconds=LOAD_SECONDS)
        with sampler, load, self.live(timeline):
            time.sleep(3)  # let the users ramp up before the first step
            timeline.mark("deploy")
            state = ops.deploy(self.ctx(DEV), ServiceRef(service, DEV), release, strategy)
            timeline.mark(state.phase.value)
        if load.error:
            raise load.error
        return state, load, timeline

    def _load_environ(self, service: str) -> dict[str, str]:
        """The locust environment: with a key of the service's edge when its api: requires one."""
        api = self.app.project.service(service).api
        if api is None or api.keys == "none":
            return dict(os.environ)
        issued = self.app.api_keys(DEV).create(service, f"demo-load-{secrets.token_hex(3)}", None)
        return {**os.environ, "PIPELINE_API_KEY": issued.secret}

    def good_canary(self) -> tuple[str, str]:
        sha = make_release(
            self.workspace, "demo/good", "orders 1.1.0", _bump("services/orders/VERSION", "1.1.0")
        )
        self.good = self.app.release("orders", DEV, None, sha)
        state, background, _ = self._canary_under_load(
            "good canary of orders (dev)", self.good, ORDERS_CANARY, "orders"
        )
        load = background.result
        if load is None:
            return "error", "the load run produced no result"
        covered = "the whole deployment" if background.ended >= state.updated_at else "part of the deployment"
        detail = (
            f"{state.release.short}: {load.figures.failures} failed of {load.figures.requests} requests "
            f"({load.figures.rps:.0f} req/s, p95 {load.figures.p95_ms:.0f} ms), locust covered {covered}"
        )
        ok = state.phase.value == "succeeded" and load.figures.failures == 0
        return (state.phase.value if ok else "failed"), detail

    def bad_canary(self) -> tuple[str, str]:
        sha = make_release(
            self.workspace,
            "demo/bad",
            "orders: a release that fails half of its requests",
            _write("services/orders/fault.json", json.dumps({"error_rate": 0.5})),
        )
        bad = self.app.release("orders", DEV, None, sha)
        state, background, _ = self._canary_under_load(
            "bad canary of orders (dev)", bad, ORDERS_CANARY, "orders"
        )
        load = background.result
        history = self.ctx(DEV).store.history(ServiceRef("orders", DEV))
        reaction = reaction_seconds(r for r in history if r.deployment == state.id)
        weights = self.platform(DEV, "orders").router.get_weights()
        failed = load.figures.failures if load else -1
        detail = (
            f"{state.reason}; traffic back on the old slot ({weights}); {failed} failed requests"
            f" of {load.figures.requests if load else 0}; "
            f"rollback took {reaction:.2f}s from verdict to verified"
        )
        return state.phase.value, detail

    def lambda_canary(self) -> tuple[str, str]:
        sha = make_release(
            self.workspace, "demo/notify", "notify 1.1.0", _bump("services/notify/VERSION", "1.1.0")
        )
        release = self.app.release("notify", DEV, None, sha)
        state, background, timeline = self._canary_under_load(
            "Lambda canary of notify (dev)", release, NOTIFY_CANARY, "notify"
        )
        platform = self.platform(DEV, "notify")
        since = timeline.marks[0].t if timeline.marks else time.time() - 60
        new = platform.metrics.measure(state.new_slot, since, time.time())
        cold = dict(new.extra).get("cold_starts", 0)
        failed = background.result.figures.failures if background.result else -1
        detail = (
            f"{state.release.short} serves 100%; new version: {new.requests} invocations, "
            f"{int(cold)} cold starts; {failed} failed requests"
        )
        return state.phase.value, detail

    def promotion(self) -> tuple[str, str]:
        staging_req = self.app.requirements(STAGING)
        staging = promotion.promote(self.ctx(STAGING), "orders", DEV, STAGING, FIRST, staging_req)
        prod_ctx = self.ctx(PROD)
        try:
            promotion.promote(prod_ctx, "orders", STAGING, PROD, FIRST, self.app.requirements(PROD))
            return "failed", "prod accepted a release without an Ops approval"
        except PromotionRefused as exc:
            if not any(item.kind == "approval" for item in exc.missing):
                raise
            self.console.print(styled("refused as expected", "yellow", f": {exc.message}"), markup=False)
        approver = os_account()  # a proven identity: the OS account, which prod (local) accepts
        promotion.approve(prod_ctx, ServiceRef("orders", PROD), staging.release, "ops", approver)
        said = f"{approver.describe()} (ops) approved {staging.release.short} for prod"
        self.console.print(said, markup=False)
        prod = promotion.promote(prod_ctx, "orders", STAGING, PROD, FIRST, self.app.requirements(PROD))
        same = prod.release.digest == staging.release.digest == (self.good.digest if self.good else "")
        detail = f"{prod.release.short} in staging and prod, same digest as dev: {same}"
        return (prod.phase.value if same else "failed"), detail

    def rollback(self) -> tuple[str, str]:
        state = ops.rollback(self.ctx(DEV, actor="carol"), ServiceRef("orders", DEV), FIRST)
        assert state is not None
        served = _get_json(f"{self.router_url(DEV)}/orders/version")
        detail = f"dev serves {state.release.short} again; the router answers version {served.get('version')}"
        expected = self.initial.get("orders")
        ok = expected is not None and state.release.digest == expected.digest
        return (state.phase.value if ok else "failed"), detail

    # --- the end -------------------------------------------------------------------

    def stop_plane(self) -> None:
        try:
            stop_plane(state_dir_of(self.workspace))
        except PipelineError:
            self.console.print(
                styled("could not stop the local plane; run `pipeline local down` in the workspace", "yellow")
            )

    def summary(self, seconds: float) -> int:
        table = Table(
            "scene", "outcome", "expected", "time", "detail", title=f"pipeline demo ({seconds:.0f}s)"
        )
        for r in self.results:
            style = "green" if r.ok else "red"
            # data (a response's version, an error) is never read as markup
            outcome = styled(r.outcome, style)
            table.add_row(Text(r.name), outcome, Text(r.expected), f"{r.seconds:.1f}s", Text(r.detail))
        self.console.print(table)
        report = write_report(self.work / "report.html", self.results, self.timelines)
        self.console.print(f"report: {report}", markup=False)
        return 0 if all(r.ok for r in self.results) else 1


def _weights(blue: int, green: int) -> Weights | None:
    return Weights(blue, green) if blue + green == 100 else None


def _bump(path: str, text: str) -> Callable[[Path], None]:
    return _write(path, text + "\n")


def _write(path: str, text: str) -> Callable[[Path], None]:
    def change(tree: Path) -> None:
        (tree / path).write_text(text, encoding="utf-8")

    return change


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


def reaction_seconds(records: Iterable[Record]) -> float:
    """From the failing verdict to 100% verified back on the old slot, in one deployment's
    history, by its structured fields alone (a reworded note changes nothing): the first
    record in phase ``rolling_back``, then the first traffic observation after it that did
    not fail the deployment. NaN when the history shows no such rollback."""
    ordered = sorted(records, key=lambda r: r.ts)
    verdict = next((r.ts for r in ordered if r.phase == Phase.ROLLING_BACK.value), None)
    if verdict is None:
        return float("nan")
    verified = next(
        (
            r.ts
            for r in ordered
            if r.ts >= verdict and r.action == TrafficObserved.__name__ and r.phase != Phase.FAILED.value
        ),
        None,
    )
    return float("nan") if verified is None else verified - verdict
