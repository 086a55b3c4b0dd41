"""Helpers of the local Lambda runtime tests: a handler source with a visible cold start,
its zip, publishing and invoking through a ``LambdaServer``, HTTP, and the worker processes
left behind."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from pipeline.local.lambda_.package import write_package
from pipeline.local.lambda_.runtime import InvokeResult, LambdaRuntime
from pipeline.local.lambda_.server import LambdaServer

HANDLER = '''
import json, os, time
from pathlib import Path

time.sleep(0.2)  # import-time work: what a cold start pays
MARKER = "{marker}"


def handler(event, context):
    http = "rawPath" in event
    action = event["rawPath"].strip("/") if http else event.get("action", "")
    args = (event.get("queryStringParameters") or {{}}) if http else event
    if action == "boom":
        raise RuntimeError("deliberate failure")
    if action == "sleep":
        time.sleep(float(args["seconds"]))
    if action == "gate":
        deadline = time.time() + 20
        while not Path(args["gate"]).exists() and time.time() < deadline:
            time.sleep(0.01)
    body = {{"pid": os.getpid(), "marker": MARKER, "version": context.function_version}}
    if not http:
        return body
    body.update(path=event["rawPath"], query=event["rawQueryString"], body=event.get("body"),
                cookies=event.get("cookies"), method=event["requestContext"]["http"]["method"],
                proxy=(event.get("pathParameters") or {{}}).get("proxy"), route=event["routeKey"])
    return {{"statusCode": 201, "headers": {{"content-type": "application/json", "x-marker": MARKER}},
            "cookies": ["session=1"], "body": json.dumps(body)}}
'''


def make_source(root: Path, marker: str, *, handler: str = HANDLER) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text(handler.format(marker=marker))
    return root


def make_zip(tmp: Path, marker: str) -> Path:
    source = make_source(tmp / f"src-{marker}", marker)
    zip_path = tmp / f"{marker}.zip"
    write_package(source, zip_path)
    return zip_path


def publish(server: LambdaServer, zip_path: Path, *, timeout: float = 10.0) -> str:
    def _publish(rt: LambdaRuntime) -> str:
        return rt.publish_version("orders", zip_path, "app.handler", memory=128, timeout=timeout)

    return server.call(_publish)


def invoke(server: LambdaServer, qualifier: str, event: dict[str, Any] | None = None) -> InvokeResult:
    return server.run(server.runtime.invoke("orders", qualifier, event or {}))


def http(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def worker_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if any("worker_main" in part for part in child.cmdline()) and child.status() != "zombie":
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (exited, or a zombie waiting for its parent)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
