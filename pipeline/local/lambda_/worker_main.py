"""The program inside one Lambda execution environment (a worker process). Stdlib only.

Run as ``python worker_main.py CODE_DIR HANDLER PARENT_PID`` with the version's code
directory as the working directory. It imports the handler module (the *init* phase, timed
as the cold start's init), then serves invocations one at a time over a line protocol:

- the first line it writes is ``{"ready": true, "init_ms": F}`` or
  ``{"ready": false, "error": {...}}`` (then it exits 1);
- each line it reads is ``{"request_id", "deadline_ms", "arn", "event", "trace"}`` (``trace``:
  the invocation's ``traceparent``/``tracestate``, set as ``TRACEPARENT``/``TRACESTATE`` in
  the environment while the handler runs); each line it
  writes back is ``{"ok": true, "payload": ..., "ms": F}`` or
  ``{"ok": false, "error": {"errorType", "errorMessage", "stackTrace"}, "ms": F}``.

The protocol uses a private copy of stdout; file descriptor 1 is pointed at stderr, so
whatever the handler prints goes to the function's log, as on AWS. The process exits when
stdin closes or when its parent process is gone (checked twice a second), so a killed
runtime never leaves environments behind.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

Handler = Callable[[Any, Any], Any]


class LambdaContext:
    """The ``context`` argument handlers receive (the attributes AWS's Python runtime has)."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.invoked_function_arn = str(request.get("arn", ""))
        self.aws_request_id = str(request.get("request_id", ""))
        self._deadline_ms = float(request.get("deadline_ms", 0))

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def describe(exc: BaseException, error_type: str = "") -> dict[str, Any]:
    """An AWS-style error object for ``exc``."""
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc)[-8:],
    }


def load_handler(spec: str) -> Handler:
    """Import ``module.function`` (the init phase). Raises with an AWS-style error type."""
    module_name, _, attr = spec.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        raise InitError(describe(exc, "Runtime.UserCodeSyntaxError")) from exc
    except ImportError as exc:
        raise InitError(describe(exc, "Runtime.ImportModuleError")) from exc
    except Exception as exc:
        raise InitError(describe(exc)) from exc
    handler = getattr(module, attr, None)
    if not callable(handler):
        message = f"Handler '{attr}' missing on module '{module_name}'"
        raise InitError({"errorType": "Runtime.HandlerNotFound", "errorMessage": message, "stackTrace": []})
    result: Handler = handler
    return result


class InitError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["errorMessage"])
        self.error = error


def invoke(handler: Handler, request: dict[str, Any]) -> tuple[str, float]:
    """Run one invocation; return the reply line and the handler's duration in ms.

    Never raises for the handler's own errors; a result JSON cannot encode is a
    ``Runtime.MarshalError``.
    """
    trace = request.get("trace") or {}
    for key in ("traceparent", "tracestate"):  # OpenTelemetry's environment carrier
        if trace.get(key):
            os.environ[key.upper()] = str(trace[key])
        else:
            os.environ.pop(key.upper(), None)
    start = time.perf_counter()
    try:
        payload = handler(request.get("event"), LambdaContext(request))
    except Exception as exc:
        reply: dict[str, Any] = {"ok": False, "error": describe(exc)}
    else:
        reply = {"ok": True, "payload": payload}
    ms = (time.perf_counter() - start) * 1000.0
    reply["ms"] = ms
    try:
        return json.dumps(reply), ms
    except (TypeError, ValueError) as exc:
        error = describe(exc, "Runtime.MarshalError")
        return json.dumps({"ok": False, "error": error, "ms": ms}), ms


def watch_parent(parent: int) -> None:
    """Exit as soon as the process that started this one is gone."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


def serve(handler: Handler, channel: IO[str]) -> None:
    version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "")
    for line in sys.stdin:
        request = json.loads(line)
        rid = request.get("request_id", "")
        print(f"START RequestId: {rid} Version: {version}", file=sys.stderr, flush=True)
        reply, ms = invoke(handler, request)
        print(f"END RequestId: {rid}", file=sys.stderr)
        print(f"REPORT RequestId: {rid}\tDuration: {ms:.2f} ms", file=sys.stderr, flush=True)
        channel.write(reply + "\n")
        channel.flush()


def main(argv: list[str]) -> int:
    code_dir, handler_spec, parent = argv[1], argv[2], int(argv[3])
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the handler's print() goes to the log, never into the protocol
    sys.path[0] = code_dir  # the code, not this file's folder, is first on the path
    threading.Thread(target=watch_parent, args=(parent,), daemon=True).start()
    start = time.perf_counter()
    try:
        handler = load_handler(handler_spec)
    except InitError as exc:
        channel.write(json.dumps({"ready": False, "error": exc.error}) + "\n")
        channel.flush()
        return 1
    channel.write(json.dumps({"ready": True, "init_ms": (time.perf_counter() - start) * 1000.0}) + "\n")
    channel.flush()
    serve(handler, channel)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
