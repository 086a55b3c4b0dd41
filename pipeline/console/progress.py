"""Progress of a deployment's waits on stderr, for a terminal and for a CI log.

The engine tells its sink before each slice of a wait and before each stage
(``WaitObserver.waiting``); ``ProgressView`` turns that into:

- on a terminal: one redrawn line with a spinner, what is awaited, a bar and a countdown
  (rich ``Progress``, removed when the wait ends), and during a load stage the live
  requests, failures and requests per second;
- elsewhere (a pipe, a CI log): a plain line when a wait starts and then one every
  ``interval`` seconds (``PIPELINE_PROGRESS_INTERVAL``, default 10) of the engine's clock,
  never a redraw.

Colour follows the console (``NO_COLOR`` is honoured where consoles are made, in
``render``). Nothing here writes to stdout.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import time
from collections.abc import Iterator, Mapping

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TaskID, TextColumn
from rich.table import Column
from rich.text import Text

from pipeline.console.waits import Wait, describe_wait, duration_text
from pipeline.core.errors import UsageError
from pipeline.core.model import ServiceRef
from pipeline.core.state import DeploymentState
from pipeline.loadtest.live import LiveLoad, watching

INTERVAL_VARIABLE = "PIPELINE_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 10.0


def progress_interval(environ: Mapping[str, str]) -> float:
    """Seconds between two plain progress lines, from ``PIPELINE_PROGRESS_INTERVAL``."""
    raw = environ.get(INTERVAL_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise UsageError(
            f"{INTERVAL_VARIABLE}={raw!r} is not a number of seconds above 0",
            hint=f"set it to e.g. 15, or unset it for the default ({DEFAULT_INTERVAL:g})",
        )
    return value


@contextlib.contextmanager
def load_progress(
    console: Console, service: str, *, interval: float | None = None, live: bool | None = None
) -> Iterator[None]:
    """Show the live figures of the load tests run inside the block, as a deployment's
    load stage shows them; ``interval`` and ``live`` default as in ``ConsoleSink``."""
    view = ProgressView(
        console,
        interval=progress_interval(os.environ) if interval is None else interval,
        live=console.is_terminal if live is None else live,
    )
    view.follow_load(service, f"load test of {service}")
    try:
        yield
    finally:
        view.end()


def load_text(live: LiveLoad) -> str:
    share = f" ({live.failures / live.requests:.1%})" if live.requests and live.failures else ""
    text = f"{live.requests} requests, {live.failures} failed{share}, {live.rps:.1f} rps"
    return f"{text}; {live.cold_starts}" if live.cold_starts else text


class ProgressView:
    """Shows the current wait of one deployment at a time; see the module docstring."""

    def __init__(self, console: Console, *, interval: float, live: bool) -> None:
        self.console = console
        self.interval = interval
        self._line = _LiveLine(console) if live else None
        self._wait: Wait | None = None
        self._label = ""
        self._started = 0.0
        self._printed_at = 0.0
        self._load_printed_at = 0.0
        self._watch = contextlib.ExitStack()

    def waiting(self, state: DeploymentState, now: float) -> None:
        wait = describe_wait(state)
        if wait is None:
            self.end()
            return
        if self._wait is None or wait.key != self._wait.key:
            self.end()
            self._begin(state.ref, wait, now)
        elif self._line is None and now - self._printed_at >= self.interval:
            self._printed_at = now
            self._plain(self._remaining_text(wait, now))
        self._wait = wait
        if self._line is not None:
            self._show(wait, now)

    def update(self, state: DeploymentState) -> None:
        """A new state was emitted: end the shown wait unless the state is still in it."""
        wait = describe_wait(state)
        if self._wait is not None and (wait is None or wait.key != self._wait.key):
            self.end()

    def load(self, live: LiveLoad) -> None:
        """Live figures of the running load stage (called about once a second)."""
        wait = self._wait
        if wait is None:
            return
        if self._line is not None:  # short, so the figures fit beside the bar in 80 columns
            what = f"load: {live.requests} req, {live.failures} failed, {live.rps:.0f} rps"
            self._line.show(what, live.elapsed, live.duration or None, live.remaining, live.elapsed)
        elif live.elapsed - self._load_printed_at >= self.interval:
            self._load_printed_at = live.elapsed
            self._plain(f"load: {load_text(live)}, {duration_text(live.remaining)} left")

    def follow_load(self, label: str, what: str) -> None:
        """Show the figures of load tests run from now until ``end()`` (``pipeline loadtest``)."""
        self.end()
        self._wait, self._label = Wait(("load", label), what, stage="load"), label
        self._load_printed_at = 0.0
        self._watch.enter_context(watching(self.load))

    def end(self) -> None:
        """Forget the current wait: stop watching a load test, remove the live line."""
        self._watch.close()
        self._wait = None
        if self._line is not None:
            self._line.stop()

    # --- internals ---------------------------------------------------------------

    def _begin(self, ref: ServiceRef, wait: Wait, now: float) -> None:
        self._wait, self._label = wait, str(ref)
        self._started = self._printed_at = now
        self._load_printed_at = 0.0
        if wait.stage == "load":
            self._watch.enter_context(watching(self.load))
        if self._line is None:
            self._plain(self._remaining_text(wait, now))
        if wait.hint:
            self._plain(wait.hint)

    def _remaining_text(self, wait: Wait, now: float) -> str:
        if wait.until is not None:
            return f"{wait.what}: {duration_text(wait.until - now)} left"
        waited = now - self._started
        text = f"{wait.what}: waiting {duration_text(waited)}" if waited > 0 else wait.what
        if wait.deadline is not None:
            text += f", gives up in {duration_text(wait.deadline - now)}"
        return text

    def _show(self, wait: Wait, now: float) -> None:
        assert self._line is not None
        waited = now - self._started
        if wait.until is None:
            self._line.show(wait.what, waited, None, None, waited)
        else:
            total = max(wait.until - self._started, 0.001)
            self._line.show(wait.what, waited, total, wait.until - now, waited)

    def _plain(self, text: str) -> None:
        stamp = dt.datetime.now().strftime("%H:%M:%S")  # wall time, like the sink's notes
        line = Text.assemble((stamp, "dim"), " ", self._label, " ", text)
        self.console.print(line, soft_wrap=True)  # one line per report, however long: logs are grepped


_FLEXIBLE = Column(no_wrap=True, overflow="ellipsis", ratio=1)


class _LiveLine:
    """One redrawn line on a terminal (rich ``Progress``), started on demand, removed on stop."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        atexit.register(self.stop)  # never leave a hidden cursor behind

    def show(self, what: str, done: float, total: float | None, left: float | None, waited: float) -> None:
        at = time.monotonic()
        if self._progress is None or self._task is None:
            self._progress = Progress(
                SpinnerColumn(),
                # what is awaited gives way (…) before the bar and the countdown do
                TextColumn("{task.description}", markup=False, table_column=_FLEXIBLE),
                BarColumn(bar_width=20),
                _Countdown(table_column=Column(no_wrap=True)),
                console=self.console,
                transient=True,
                expand=True,
            )
            self._task = self._progress.add_task(what, total=total, left=left, waited=waited, at=at)
            self._progress.update(self._task, completed=done)
            self._progress.start()
            return
        self._progress.update(
            self._task, description=what, total=total, completed=done, left=left, waited=waited, at=at
        )

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress = self._task = None


class _Countdown(ProgressColumn):
    """Time left (or, open-ended, time waited), ticking between the engine's updates."""

    def render(self, task: Task) -> Text:
        since = time.monotonic() - float(task.fields.get("at", time.monotonic()))
        left = task.fields.get("left")
        if left is None:
            return Text(f"waiting {duration_text(float(task.fields.get('waited', 0.0)) + since)}")
        return Text(f"{duration_text(max(0.0, float(left) - since))} left")
