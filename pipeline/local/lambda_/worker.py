"""One execution environment: a worker process running ``worker_main`` for one version.

A worker is started cold (a fresh interpreter that imports the handler module), then
serves one invocation at a time while it stays warm. It is discarded when an invocation
times out (its process group is killed, as AWS destroys the environment), when its process
dies, or when an invocation is cancelled half-way (its reply could still arrive).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.local.environ import child_environment
from pipeline.local.lambda_ import worker_main
from pipeline.local.lambda_.model import VersionSpec

BOOTSTRAP = Path(worker_main.__file__).resolve()
PROTOCOL_LIMIT = 16 * 1024 * 1024  # bytes per line: above AWS's 6 MB payload limit
INIT_TIMEOUT = 10.0  # seconds, as AWS's init phase limit

Kind = Literal["ok", "error", "timeout", "died"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The worker's answer to one invocation. ``ms`` is measured by the parent."""

    kind: Kind
    payload: Any
    ms: float
    error: str = ""


class InitFailed(Exception):
    """The environment could not start: its handler module did not import, or it crashed."""

    def __init__(self, error: dict[str, Any], init_ms: float) -> None:
        super().__init__(f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}")
        self.error = error
        self.init_ms = init_ms


class Worker:
    """A started, initialised environment. Not safe for concurrent ``invoke`` calls."""

    def __init__(self, proc: asyncio.subprocess.Process, spec: VersionSpec, init_ms: float) -> None:
        self._proc = proc
        self.spec = spec
        self.init_ms = init_ms
        self.provisioned = False
        self.last_used = time.monotonic()
        self.reusable = True  # False once its state is unknown or its process is gone

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.returncode is None

    @classmethod
    async def start(cls, spec: VersionSpec, code_dir: Path, log_path: Path) -> Worker:
        """Spawn and initialise a worker (a cold start). Raises InitFailed."""
        began = time.perf_counter()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with log_path.open("ab") as log:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, str(BOOTSTRAP), str(code_dir), spec.handler, str(os.getpid()),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=log,
                    cwd=code_dir,
                    env=_environment(spec, log_path),
                    limit=PROTOCOL_LIMIT,
                    start_new_session=True,  # its own process group: a kill reaches what it spawned
                )
        except OSError as exc:
            raise InitFailed({"errorType": "Runtime.StartError", "errorMessage": str(exc)}, 0.0) from exc
        worker = cls(proc, spec, 0.0)
        try:
            line = await asyncio.wait_for(_readline(proc), INIT_TIMEOUT)
        except TimeoutError as exc:
            await worker.stop()
            note = f"init did not finish within {INIT_TIMEOUT:g} seconds"
            error = {"errorType": "Runtime.InitTimeout", "errorMessage": note}
            raise InitFailed(error, INIT_TIMEOUT * 1000) from exc
        except BaseException:
            await worker.stop()
            raise
        worker.init_ms = (time.perf_counter() - began) * 1000.0
        hello = _decode(line)
        if not hello.get("ready"):
            note = await worker._exit_note()
            error = hello.get("error") or {"errorType": "Runtime.ExitError", "errorMessage": note}
            raise InitFailed(error, worker.init_ms)
        return worker

    async def invoke(self, request: dict[str, Any], timeout: float) -> Outcome:
        """Run one invocation, waiting at most ``timeout`` seconds for the reply."""
        began = time.perf_counter()
        self.reusable = False  # until a reply is read, its state is unknown
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(request).encode() + b"\n")
            await self._proc.stdin.drain()
            line = await asyncio.wait_for(_readline(self._proc), timeout)
        except TimeoutError:
            await self.stop()
            ms = (time.perf_counter() - began) * 1000.0
            note = f"Task timed out after {timeout:.2f} seconds"
            return Outcome("timeout", {"errorType": "Sandbox.Timedout", "errorMessage": note}, ms, note)
        except (ConnectionError, BrokenPipeError):
            line = b""
        except asyncio.CancelledError:
            self.kill()
            raise
        ms = (time.perf_counter() - began) * 1000.0
        reply = _decode(line)
        if not reply:
            note = f"Runtime exited without providing a reason ({await self._exit_note()})"
            error = {"errorType": "Runtime.ExitError", "errorMessage": note}
            return Outcome("died", error, ms, f"Runtime.ExitError: {note}")
        self.reusable = True
        self.last_used = time.monotonic()
        if reply.get("ok"):
            return Outcome("ok", reply.get("payload"), ms)
        error = reply.get("error") or {}
        summary = f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
        return Outcome("error", error, ms, summary)

    async def stop(self) -> None:
        """Kill the worker's process group and reap it. Idempotent."""
        self.reusable = False
        self.kill()
        with contextlib.suppress(ProcessLookupError):
            await self._proc.wait()

    async def _exit_note(self) -> str:
        """Let a dying process finish exiting (up to a second), stop it, describe how it ended.
        Cancelled while it waits (the runtime closing), it still stops the process first."""
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), 1.0)
            code = self._proc.returncode
        finally:
            await self.stop()
        return "killed" if code is None else f"exit status {code}"

    def kill(self) -> None:
        """Send SIGKILL to the worker's process group now; ``stop`` also reaps it."""
        self.reusable = False
        if self._proc.returncode is not None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return  # the whole group is gone already
        except PermissionError:
            # Only the leader, then. Not after a killpg that worked: Popen.send_signal polls,
            # reaping the child behind asyncio's child watcher (which then logs a warning).
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()


async def _readline(proc: asyncio.subprocess.Process) -> bytes:
    assert proc.stdout is not None
    return await proc.stdout.readline()


def _decode(line: bytes) -> dict[str, Any]:
    if not line:
        return {}
    try:
        data = json.loads(line)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _environment(spec: VersionSpec, log_path: Path) -> dict[str, str]:
    """The worker's environment: the allow-list of ``pipeline.local.environ`` (never the
    deployer's keys and tokens), the version's variables, then AWS's own."""
    return child_environment(spec.environment, {
        "AWS_LAMBDA_FUNCTION_NAME": spec.function,
        "AWS_LAMBDA_FUNCTION_VERSION": spec.number,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": str(log_path),
        "AWS_EXECUTION_ENV": "pipeline-local",
        "PYTHONDONTWRITEBYTECODE": "1",  # keep the published code directory as it was unpacked
        "PYTHONUNBUFFERED": "1",
    })
