"""The demo's edge scene: notify behind a keyed, cached, CIDR-restricted API, and a canary
of the function that meets no cold start once traffic moves.

What it does, on the demo's local plane (the same engine and adapters as ``pipeline
deploy``, ``pipeline keys``):

1. gives notify's ``api:`` block a ``trial`` usage plan (a quota of ``TRIAL_QUOTA`` requests
   a day) and a denied address (``DENIED_PEER``), and its function a keep-warm schedule of
   ``WARM`` environments in place of provisioned concurrency, committed in the workspace;
2. deploys a new notify release as a canary under locust load (with a key of the default
   plan); the live view shows weights, requests, errors and the edge's cache hit ratio;
3. asks the edge what a caller without a key gets (403), what a key of a refused address
   gets (403), and what a trial key gets past its quota (429 with ``Retry-After``);
4. reads the new version's cold starts since the deployment began from the Metrics port:
   the deployment warmed what notify calls and its new version before moving traffic.

Each check is a fact measured on real requests; the scene succeeds only if all hold.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipeline import operations as ops
from pipeline.config import load_project
from pipeline.console.render import bar
from pipeline.core.errors import PipelineError, UsageError
from pipeline.core.model import Release, ServiceRef, Slot, Weights
from pipeline.core.state import DeploymentState
from pipeline.demo.timeline import Timeline
from pipeline.demo.workspace import git, make_release
from pipeline.loadtest.runner import LoadRunner

if TYPE_CHECKING:
    from pipeline.core.plan import Strategy
    from pipeline.demo.scenes import BackgroundLoad, Demo

SERVICE = "notify"
TRIAL_QUOTA = 100
"""The trial plan's daily quota (no lower than the load stage's planned requests: validate)."""
DENIED_PEER = "127.0.0.66"
WARM = 5
"""Environments the deployment warms per function of the chain (keep_warm allows 5): the
scene runs 4 users, so the first requests after the shift all meet a warm environment."""
CACHE_WINDOW = 5.0
"""Seconds of edge counters behind the live view's cache hit ratio."""


@dataclass(frozen=True, slots=True)
class Probe:
    """One request's answer: status, the edge's message and ``Retry-After`` (None if absent)."""

    status: int
    message: str
    retry_after: str | None

    def describe(self) -> str:
        wait = f", Retry-After {self.retry_after}s" if self.retry_after is not None else ""
        return f"{self.status} {self.message}{wait}"


def probe(base: str, path: str, key: str | None = None, source: str | None = None) -> Probe:
    """GET ``base + path`` with ``x-api-key: key``, from the loopback address ``source``."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10,
                                            source_address=(source, 0) if source else None)
    try:
        connection.request("GET", path, headers={"x-api-key": key} if key else {})
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    try:
        message = str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        message = ""
    return Probe(answer.status, message, answer.getheader("Retry-After"))


def edge_config(text: str) -> str:
    """notify's ``service.yaml`` with a ``trial`` plan, ``DENIED_PEER`` on its deny list, and
    ``WARM`` environments kept warm instead of provisioned concurrency (so the deployment
    warms the chain and the new version itself). ``UsageError`` when the file is not shaped
    like the example's."""
    plans, allow, function = "  plans:\n", "  allow_cidrs:", "lambda:\n"
    if plans not in text or allow not in text or function not in text or "keep_warm" in text:
        raise UsageError(
            f"services/{SERVICE}/service.yaml is not shaped like the example's: the demo extends its "
            "api.plans and api.allow_cidrs and adds lambda.keep_warm",
            hint=f"restore the example (git checkout services/{SERVICE}/service.yaml)",
        )
    trial = f"    trial: {{rate: 1000/s, burst: 1000, quota: {TRIAL_QUOTA}/day}}\n"
    text = text.replace(plans, plans + trial, 1)
    text = text.replace(allow, f"  deny_cidrs: [{DENIED_PEER}/32]\n{allow}", 1)
    text = re.sub(r"^  provisioned_concurrency: .*\n", "", text, flags=re.M)
    return text.replace(function, f"{function}  keep_warm: {{every: 1m, concurrency: {WARM}}}\n", 1)


class EdgeScene:
    """The scene, over a ``Demo`` whose workspace and plane are set up (``Demo.run``):
    ``strategy`` is the canary, ``background`` the demo's locust-in-a-thread class."""

    def __init__(self, demo: Demo, strategy: Strategy, background: type[BackgroundLoad]) -> None:
        self.demo = demo
        self.strategy = strategy
        self.background = background
        self.hit_ratio: float | None = None

    def run(self) -> tuple[str, str]:
        demo = self.demo
        self._configure()
        sha = make_release(demo.workspace, "demo/edge", "notify 1.2.0", _version("1.2.0"))
        release = demo.app.release(SERVICE, "dev", None, sha)
        started = time.time()
        state, failed, requests = self._canary(release)
        base = demo.router_url("dev")
        trial = demo.app.api_keys("dev").create(SERVICE, f"demo-trial-{int(started)}", "trial").secret
        no_key = probe(base, "/notify/health")
        refused = probe(base, "/notify/health", trial, source=DENIED_PEER)
        answers = [probe(base, "/notify/health", trial) for _ in range(TRIAL_QUOTA + 1)]
        new = demo.platform("dev", SERVICE).metrics.measure(state.new_slot, started, time.time())
        cold = int(dict(new.extra).get("cold_starts", 0))
        over = answers[-1]
        facts = {
            "no key": (no_key.status == 403, no_key.describe()),
            f"from {DENIED_PEER}": (refused.status == 403, refused.describe()),
            f"trial key, request {TRIAL_QUOTA + 1}": (
                over.status == 429 and over.retry_after is not None
                and all(a.status == 200 for a in answers[:-1]), over.describe()),
            "cache hit ratio": (self.hit_ratio is not None and self.hit_ratio > 0, _ratio(self.hit_ratio)),
            "new version": (cold == 0 and new.requests > 0,
                            f"{new.requests} invocations, {cold} cold starts once traffic moved"),
            "load": (failed == 0, f"{failed} failed of {requests} requests"),
        }
        for name, (ok, said) in facts.items():
            mark = (f"{'✓' if ok else '✗'} {name}: ", "green" if ok else "red")
            demo.console.print(Text.assemble(mark, said))
        detail = f"{state.release.short} {state.phase.value}; " + "; ".join(
            f"{name}: {said}" for name, (_, said) in facts.items()
        )
        ok = state.phase.value == "succeeded" and all(ok for ok, _ in facts.values())
        return ("succeeded" if ok else "failed"), detail

    # --- steps ---------------------------------------------------------------------

    def _configure(self) -> None:
        """Commit the trial plan and the denied address in the workspace; reload the project."""
        demo = self.demo
        path = demo.workspace / "services" / SERVICE / "service.yaml"
        path.write_text(edge_config(path.read_text(encoding="utf-8")), encoding="utf-8")
        git(demo.workspace, "commit", "--quiet", "-am",
            f"demo: a trial plan ({TRIAL_QUOTA} requests a day) and a denied address for notify's edge")
        load_project(demo.workspace)  # a mistake in the edit shows here, with its line
        demo.reload()
        demo.console.print(f"notify's api: gets a trial plan (quota {TRIAL_QUOTA}/day) and denies "
                           f"{DENIED_PEER}; its function keeps {WARM} environments warm: the next "
                           "deployment applies both and warms the chain before traffic moves", markup=False)

    def _canary(self, release: Release) -> tuple[DeploymentState, int, int]:
        """The canary under load with the live view; (state, failed, requests)."""
        demo = self.demo
        timeline, sampler = demo.watch("notify behind its edge (dev)", "dev", SERVICE)
        runner = LoadRunner(demo.workspace, reports_root=demo.work / "reports",
                            environ=demo._load_environ(SERVICE))
        load = self.background(runner, SERVICE, demo.router_url("dev"), users=4, seconds=16.0)
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch_cache, args=(stop,), daemon=True)
        with sampler, load, self._live(timeline):
            watcher.start()
            time.sleep(3)  # let the users start before the first step
            timeline.mark("deploy")
            state = ops.deploy(demo.ctx("dev"), ServiceRef(SERVICE, "dev"), release, self.strategy)
            timeline.mark(state.phase.value)
            stop.set()
        watcher.join(5)
        if load.error:
            raise load.error
        figures = load.result.figures if load.result else None
        return state, (figures.failures if figures else -1), (figures.requests if figures else 0)

    def _watch_cache(self, stop: threading.Event) -> None:
        """Keep ``hit_ratio`` at the edge's ratio over the last ``CACHE_WINDOW`` seconds."""
        metrics = self.demo.platform("dev", SERVICE).metrics
        while not stop.wait(1.0):
            now = time.time()
            try:
                extra = dict(metrics.measure(Slot.BLUE, now - CACHE_WINDOW, now).extra)
            except PipelineError:
                continue  # the plane is busy: keep the last figure
            if "edge_cache_hit_ratio" in extra:
                self.hit_ratio = extra["edge_cache_hit_ratio"]

    def _live(self, timeline: Timeline) -> Live:
        def render() -> Table:
            table = Table.grid(padding=(0, 2))
            s = timeline.samples[-1] if timeline.samples else None
            if s is None:
                table.add_row("waiting for traffic ...")
            else:
                weights = Weights(s.blue, s.green) if s.blue + s.green == 100 else None
                table.add_row(bar(weights), f"{s.rps:6.0f} req/s", f"errors {s.error_rate:6.1%}",
                              f"cache hits {_ratio(self.hit_ratio)}")
            return table

        return Live(get_renderable=render, console=self.demo.console, refresh_per_second=4, transient=True)


def _version(text: str) -> Callable[[Path], None]:
    def change(tree: Path) -> None:
        (tree / "services" / SERVICE / "VERSION").write_text(text + "\n", encoding="utf-8")

    return change


def _ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.0%}"

