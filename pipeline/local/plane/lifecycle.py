"""Start, find and stop the plane process of a project (``pipeline local up | down``).

The plane of a project lives in ``<root>/.pipeline``, or in ``$PIPELINE_LOCAL_HOME`` when
that is set (``state_dir_of``, the one place this folder is chosen, so that two checkouts,
e.g. a Dev repository and an Ops repository, share one local platform): ``plane.json`` says where its
control API listens, ``logs/plane.log`` holds its output. Every process the plane starts
(replicas, Lambda workers) inherits ``PIPELINE_PLANE_ID=<id>`` in its environment, which is
how ``stop_plane`` finds and kills leftovers even after the plane itself was killed.

``ensure_plane`` is idempotent and safe to call from concurrent processes (a file lock
serialises them): a live plane is reused, a stale ``plane.json`` is replaced.

The folder is made 0700 and every plane gets a new token (``plane.token``, 0600; see
``pipeline.local.plane.access``) that its control API requires.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

import pipeline
from pipeline.core.errors import PlatformError, UsageError
from pipeline.local.plane.access import auth_headers, new_token, read_token
from pipeline.local.private_files import private_dir

PLANE_FILE = "plane.json"
LOCAL_HOME_ENV = "PIPELINE_LOCAL_HOME"
DEFAULT_STATE_DIR = ".pipeline"
PLANE_ID_ENV = "PIPELINE_PLANE_ID"
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True, slots=True)
class PlaneInfo:
    """What ``plane.json`` says: the plane's pid, control port and id; and its token."""

    pid: int
    port: int
    id: str
    started_at: float
    token: str = field(default="", repr=False)  # a secret: never in a repr, a log or a message

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True, slots=True)
class StopReport:
    """What ``stop_plane`` did: whether a plane answered, and how many processes it killed."""

    was_running: bool
    graceful: bool
    killed: int


def state_dir_of(root: Path, configured: str = DEFAULT_STATE_DIR) -> Path:
    """Where the local platform keeps state, registry, plane and logs: ``$PIPELINE_LOCAL_HOME``
    when set (an absolute folder, shared by every project and environment that names it),
    else ``<root>/<configured>`` (an environment's ``local.state_dir``, default ``.pipeline``).

    UsageError when ``$PIPELINE_LOCAL_HOME`` is not an absolute path.
    """
    home = os.environ.get(LOCAL_HOME_ENV, "")
    if not home:
        return Path(root).resolve() / configured
    if not Path(home).is_absolute():
        raise UsageError(
            f"${LOCAL_HOME_ENV} must be an absolute folder, got {home!r}",
            hint=f'e.g. export {LOCAL_HOME_ENV}="$PWD/{home}"',
        )
    return Path(home).resolve()


def read_plane(state_dir: Path) -> PlaneInfo | None:
    """The plane recorded in ``state_dir``, or None (no file, or an unreadable one)."""
    try:
        data = json.loads((state_dir / PLANE_FILE).read_text())
        return PlaneInfo(int(data["pid"]), int(data["port"]), str(data["id"]), float(data["started_at"]),
                         read_token(state_dir))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def answers(info: PlaneInfo, timeout: float = 2.0) -> bool:
    """True when the plane's control API accepts the token and answers with the recorded id."""
    request = urllib.request.Request(f"{info.url}/v1/status", headers=auth_headers(info.token))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return bool(json.loads(resp.read()).get("id") == info.id)
    except (OSError, ValueError):
        return False


def live_plane(state_dir: Path) -> PlaneInfo | None:
    info = read_plane(state_dir)
    return info if info is not None and answers(info) else None


def ensure_plane(state_dir: Path, *, timeout: float = 20.0) -> tuple[PlaneInfo, bool]:
    """The live plane of ``state_dir``, started if needed; the bool says it was started now.

    Raises PlatformError when a new plane does not answer within ``timeout`` seconds.
    """
    state_dir = Path(state_dir).resolve()
    with _locked(state_dir):
        info = live_plane(state_dir)
        if info is not None:
            return info, False
        stale = read_plane(state_dir)
        if stale is not None:
            _reap(stale.pid)
            _kill_all(plane_processes(stale.id))
            with contextlib.suppress(OSError):
                (state_dir / PLANE_FILE).unlink()
        return _start(state_dir, timeout), True


def stop_plane(state_dir: Path, *, timeout: float = 30.0) -> StopReport:
    """Stop the plane and every process it started; idempotent. Leaves no process behind."""
    state_dir = Path(state_dir).resolve()
    with _locked(state_dir):
        info = read_plane(state_dir)
        if info is None:
            return StopReport(False, False, 0)
        graceful = answers(info)
        if graceful:
            with contextlib.suppress(OSError):
                headers = {**auth_headers(info.token), "Content-Type": "application/json"}
                request = urllib.request.Request(f"{info.url}/v1/shutdown", method="POST", data=b"{}",
                                                 headers=headers)
                urllib.request.urlopen(request, timeout=5).close()
            graceful = _wait_gone(info.pid, timeout)
        killed = _kill_all([p for p in [_process(info.pid)] if p is not None])
        _reap(info.pid)
        killed += _kill_all(plane_processes(info.id))
        with contextlib.suppress(OSError):
            (state_dir / PLANE_FILE).unlink()
        return StopReport(True, graceful, killed)


def plane_processes(plane_id: str) -> list[psutil.Process]:
    """Every live process (not zombie) carrying ``PIPELINE_PLANE_ID=plane_id``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid() or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(PLANE_ID_ENV) == plane_id:
                found.append(proc)
        except psutil.Error:
            continue
    return found


# --- internals -------------------------------------------------------------------------


def _start(state_dir: Path, timeout: float) -> PlaneInfo:
    plane_id = os.urandom(8).hex()
    logs = private_dir(state_dir / "logs")
    new_token(state_dir)
    env = dict(os.environ)
    env[PLANE_ID_ENV] = plane_id
    package_parent = str(Path(pipeline.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    with os.fdopen(os.open(logs / "plane.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.local.plane.daemon",
             "--state-dir", str(state_dir), "--id", plane_id, "--log-file", str(logs / "plane.log")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=state_dir, start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_plane(state_dir)
        if info is not None and info.id == plane_id and answers(info):
            return info
        if proc.poll() is not None:
            _CHILDREN.pop(proc.pid, None)
            raise PlatformError(
                f"the local plane exited while starting (code {proc.returncode}): "
                f"{_tail(logs / 'plane.log')}",
                hint=f"see {logs / 'plane.log'}",
            )
        time.sleep(0.05)
    _kill_all(plane_processes(plane_id))
    _reap(proc.pid)
    raise PlatformError(
        f"the local plane did not answer within {timeout:g}s: {_tail(logs / 'plane.log')}",
        hint=f"see {logs / 'plane.log'}; the machine may be overloaded, try `pipeline local up` again",
    )


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    private_dir(state_dir)
    fd = os.open(state_dir / "plane.lock", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _process(pid: int) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc
    except psutil.Error:
        return None


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if _process(pid) is None:
            return True
        time.sleep(0.05)
    return False


def _reap(pid: int) -> None:
    """Collect the exit status if the plane is our child (no zombie left behind)."""
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        if child.poll() is None:
            _CHILDREN[pid] = child
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _kill_all(procs: list[psutil.Process], timeout: float = 5.0) -> int:
    """SIGKILL ``procs``; wait until each is gone or a zombie. Returns how many died."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive and time.monotonic() < deadline:
        for proc in alive:
            _reap(proc.pid)
        alive = [p for p in alive if _process(p.pid) is not None]
        if alive:
            time.sleep(0.02)
    return len(procs) - len(alive)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "no output"
