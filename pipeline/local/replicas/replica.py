"""One replica: a process running a release, health-checked, restarted, drained.

Lifecycle (all on the plane's event loop)::

    starting ──first passing check──▶ healthy ◀──healthy_threshold passes── unhealthy
        │                                │ unhealthy_threshold failures ──────▲
        └── exit / never passes in start_period / unhealthy ──▶ backoff ──▶ starting
    any ── stop() ──▶ draining (out of rotation, in-flight requests finish)
                      ──▶ SIGTERM ──stop_timeout──▶ SIGKILL ──▶ stopped

Only a ``healthy`` replica is in rotation. An unhealthy replica that fails
``unhealthy_threshold`` more checks (or one that never passed within ``start_period``) is
replaced: killed, then started again like a replica that exited, after a backoff (0.2 s
doubling to 10 s, reset after 30 s of uptime), on a new port.

A replica that cannot start says so as soon as that is clear (``failure``, judged by
``StartFailures``), quoting what it printed last or what its health check answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from enum import StrEnum
from pathlib import Path

import aiohttp
import psutil

from pipeline.local.environ import child_environment
from pipeline.local.replicas.start_failures import LINE_CHARS, StartFailures
from pipeline.local.specs import ReleaseSpec

_BACKOFF_FIRST = 0.2
_BACKOFF_MAX = 10.0
_STABLE_AFTER = 30.0
_STARTUP_POLL = 0.1


class ReplicaState(StrEnum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    BACKOFF = "backoff"
    DRAINING = "draining"
    STOPPED = "stopped"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command_argv(command: tuple[str, ...]) -> list[str]:
    """The argv to run: a leading ``python``/``python3`` means this interpreter."""
    argv = list(command)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


class Replica:
    """Replica ``index`` of ``spec``, its stdout/stderr appended to ``log_path``.

    ``start()`` returns at once; ``stop()`` drains and returns once the process is gone.
    ``inflight`` is maintained by the router (``acquire``/``release``) around each request.
    """

    def __init__(self, spec: ReleaseSpec, slot: str, index: int, log_path: Path,
                 http: aiohttp.ClientSession) -> None:
        self.spec = spec
        self.slot = slot
        self.index = index
        self.log_path = log_path
        self._http = http
        self.state = ReplicaState.STARTING
        self.port: int | None = None
        self.pid: int | None = None
        self.restarts = 0
        self.inflight = 0
        self.last_exit: int | None = None
        self.last_error = ""
        self.start_failures = StartFailures(index, log_path, spec.launch.health)
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._replaced = ""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- what the router and status see ---------------------------------------------

    @property
    def in_rotation(self) -> bool:
        return self.state is ReplicaState.HEALTHY and not self._stopping and self.running

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def failure(self) -> str:
        """Why this replica cannot start; "" while that is not clear."""
        return self.start_failures.failure

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def snapshot(self) -> dict[str, object]:
        return {
            "index": self.index, "state": self.state.value, "pid": self.pid, "port": self.port,
            "restarts": self.restarts, "inflight": self.inflight, "last_exit": self.last_exit,
            "last_error": self.last_error, "failure": self.failure, "log": str(self.log_path),
        }

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"replica-{self.spec.service}-{self.index}")

    async def stop(self) -> None:
        """Drain (wait for in-flight requests, at most ``drain_timeout``), SIGTERM, and
        SIGKILL after ``stop_timeout``. Idempotent."""
        self._stopping = True
        self._wake.set()
        if self.state is not ReplicaState.STOPPED:
            self.state = ReplicaState.DRAINING
        deadline = time.monotonic() + self.spec.launch.drain_timeout
        while self.inflight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self._terminate(self.spec.launch.stop_timeout)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.state = ReplicaState.STOPPED

    async def _run(self) -> None:
        backoff = _BACKOFF_FIRST
        while not self._stopping:
            started = time.monotonic()
            proc = await self._spawn()
            if proc is None:
                self.start_failures.run_ended(self.last_error, output=False)
            else:
                if self._stopping:  # stop() came while the process was being started
                    await self._terminate(self.spec.launch.stop_timeout)
                await self._supervise(proc)
            if self._stopping:
                break
            self.restarts += 1
            if time.monotonic() - started > _STABLE_AFTER:
                backoff = _BACKOFF_FIRST
            self.state = ReplicaState.BACKOFF
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _spawn(self) -> asyncio.subprocess.Process | None:
        spec = self.spec
        self.port = free_port()
        self.state = ReplicaState.STARTING
        self.start_failures.run_started()
        configured = dict(spec.launch.env)
        env = child_environment(configured, {
            "PORT": str(self.port), "PYTHONUNBUFFERED": configured.get("PYTHONUNBUFFERED", "1"),
            "PIPELINE_SERVICE": spec.service, "PIPELINE_ENVIRONMENT": spec.environment,
            "PIPELINE_SLOT": self.slot, "PIPELINE_VERSION": spec.version,
            "PIPELINE_DIGEST": spec.digest, "PIPELINE_REPLICA": str(self.index),
        })
        cwd = Path(spec.snapshot) / spec.launch.cwd
        if not cwd.is_dir():
            self.last_error = f"cannot start: the release has no folder {spec.launch.cwd} (looked in {cwd})"
            return None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.log_path.open("ab") as log:
                proc = await asyncio.create_subprocess_exec(
                    *command_argv(spec.launch.command), cwd=cwd, env=env,
                    stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                )
        except OSError as exc:
            command = " ".join(spec.launch.command)
            self.last_error = f"cannot start {command!r} in {spec.launch.cwd}: {exc.strerror or exc}"
            return None
        self._proc, self.pid = proc, proc.pid
        return proc

    async def _supervise(self, proc: asyncio.subprocess.Process) -> None:
        checker = asyncio.create_task(self._check_health(proc))
        try:
            code = await proc.wait()
        finally:
            checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checker
        self.last_exit, self.pid = code, None
        if self._replaced:
            self.last_error, self._replaced = self._replaced, ""
        elif not self._stopping:
            self.last_error = f"exited with code {code} (see {self.log_path})"
        if not self._stopping:
            self.start_failures.run_ended(self.last_error.split(" (see ")[0])

    # --- health ---------------------------------------------------------------------

    async def _check_health(self, proc: asyncio.subprocess.Process) -> None:
        hc = self.spec.launch.health
        started = time.monotonic()
        passes = fails = 0
        while proc.returncode is None and not self._stopping:
            ok, why, status = await self._probe()
            passes, fails = (passes + 1, 0) if ok else (0, fails + 1)
            self._judge(ok, passes, fails, time.monotonic() - started)
            self.start_failures.checked(ok, why, status, time.monotonic())
            if not ok:
                self.last_error = why
            elif self.state is ReplicaState.HEALTHY:
                self.last_error = ""  # the exit code of a crash stays in last_exit
            if self.state is ReplicaState.UNHEALTHY and fails >= 2 * hc.unhealthy_threshold:
                self._replaced = f"replaced after failing health checks: {why}"
                self._signal(proc, hard=True)
                return
            starting = self.state is ReplicaState.STARTING
            await asyncio.sleep(min(hc.interval, _STARTUP_POLL) if starting else hc.interval)

    def _judge(self, ok: bool, passes: int, fails: int, age: float) -> None:
        hc, state = self.spec.launch.health, self.state
        if state is ReplicaState.STARTING:
            if ok:
                self.state = ReplicaState.HEALTHY
            elif age > hc.start_period:
                self.state = ReplicaState.UNHEALTHY
        elif state is ReplicaState.HEALTHY and fails >= hc.unhealthy_threshold:
            self.state = ReplicaState.UNHEALTHY
        elif state is ReplicaState.UNHEALTHY and passes >= hc.healthy_threshold:
            self.state = ReplicaState.HEALTHY

    async def _probe(self) -> tuple[bool, str, int | None]:
        """(passed, why not, the HTTP status answered or None when nothing answered)."""
        hc = self.spec.launch.health
        url = f"{self.url}{hc.path}"
        try:
            timeout = aiohttp.ClientTimeout(total=hc.timeout)
            async with self._http.get(url, timeout=timeout, allow_redirects=False) as resp:
                body = await resp.content.read(LINE_CHARS + 1)
                if 200 <= resp.status < 300:
                    return True, "", resp.status
                text = " ".join(body.decode(errors="replace").split())[:LINE_CHARS]
                why = f"health check GET {hc.path} answered {resp.status}: {text or '(empty body)'}"
                return False, why, resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return False, f"health check GET {hc.path} failed: {type(exc).__name__} {exc}".strip(), None

    # --- stopping -------------------------------------------------------------------

    async def _terminate(self, grace: float) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        children = _children(proc.pid)
        self._signal(proc, hard=False)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            self._signal(proc, hard=True)
            await proc.wait()
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()

    @staticmethod
    def _signal(proc: asyncio.subprocess.Process, *, hard: bool) -> None:
        with contextlib.suppress(ProcessLookupError):
            if hard:
                proc.kill()
            else:
                proc.terminate()


def _children(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []
