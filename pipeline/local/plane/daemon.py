"""The plane process: ``python -m pipeline.local.plane.daemon --state-dir DIR --id ID``.

Started in its own session by ``pipeline local up`` (see ``pipeline.local.plane.lifecycle``),
it hosts the supervisor, one router per environment and the Lambda
runtime, behind the JSON control API on ``127.0.0.1:<free port>``. Once that API answers it
writes ``DIR/plane.json`` (pid, port, id), atomically. SIGTERM, SIGINT or
``POST /v1/shutdown`` stop every listener, replica and worker, remove ``plane.json`` and
exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from pipeline.local.http import tracing as router_tracing
from pipeline.local.http.dataplane import DataPlane
from pipeline.local.http.limits import RouterLimits, environ_limits
from pipeline.local.lambda_.runtime import LambdaRuntime, lambda_app
from pipeline.local.plane.access import read_token
from pipeline.local.plane.control_api import control_app
from pipeline.local.plane.environments import Plane
from pipeline.local.plane.lambda_bridge import cross_loop_invoker
from pipeline.local.plane.logs import configure as configure_logging
from pipeline.local.plane.otlp import add_receiver, export_environment, plane_provider, spans_quiet
from pipeline.local.plane.otlp import router_tracing as router_spans
from pipeline.local.spans import SpanStore

PLANE_FILE = "plane.json"
log = logging.getLogger("pipeline.local.plane")


def write_plane_file(state_dir: Path, data: dict[str, Any]) -> None:
    """Write ``plane.json`` atomically (readers never see half a file)."""
    target = state_dir / PLANE_FILE
    tmp = target.with_name(f".{PLANE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, target)


def _remove_plane_file(state_dir: Path, plane_id: str) -> None:
    target = state_dir / PLANE_FILE
    with contextlib.suppress(OSError, ValueError):
        if json.loads(target.read_text()).get("id") == plane_id:
            target.unlink()


async def serve(state_dir: Path, plane_id: str, limits: RouterLimits | None = None) -> None:
    """Run the plane until a shutdown is requested; clean everything up before returning."""
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shutdown.set)
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
    data_plane = DataPlane(limits or environ_limits())  # the routers' own thread and loop
    await data_plane.start()
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as http:
        runtime = LambdaRuntime(state_dir / "lambda")
        invoke = cross_loop_invoker(runtime, loop, data_plane.limits.body_idle_timeout)
        plane = Plane(state_dir, plane_id, http, invoke, data_plane=data_plane)
        app = control_app(plane, shutdown, read_token(state_dir))
        app.add_subapp("/lambda/", lambda_app(runtime))
        spans = SpanStore.of(state_dir)  # recent spans: the router's and every child's (OTLP)
        add_receiver(app, spans, read_token(state_dir))
        provider = plane_provider(spans)
        routing = router_spans(spans)
        if routing is not None:
            router_tracing.use(routing[0], routing[1], forward=routing[2])
        if provider is not None:
            runtime.tracing.use(lambda function: plane_provider(spans, function))
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = int(runner.addresses[0][1])
        export_environment(port, read_token(state_dir))  # before any child starts
        try:
            await runtime.start()  # re-warm provisioned workers after a restart
            await plane.restore()
            write_plane_file(state_dir, {
                "pid": os.getpid(), "port": port, "id": plane_id, "started_at": time.time(),
                "state_dir": str(state_dir), "lambda": True,
            })
            log.info("plane %s serving control API on 127.0.0.1:%d", plane_id, port)
            await shutdown.wait()
            log.info("plane %s shutting down", plane_id)
        finally:
            await plane.close()
            await data_plane.close()
            await runtime.close()
            await runner.cleanup()
            router_tracing.use(None)
            runtime.tracing.use(None)  # flushes the functions' spans
            if provider is not None:
                provider.shutdown()  # flushes the spans still queued
            if routing is not None:
                routing[1].close()  # writes the router's spans still queued
                routing[0].shutdown()
            _remove_plane_file(state_dir, plane_id)
    log.info("plane %s stopped", plane_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.local.plane.daemon")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--id", required=True)
    parser.add_argument("--log-file", type=Path, help="rotating log file (default: stderr)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.umask(0o077)  # everything the plane writes under its folder is private (0600 / 0700)
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not read_token(state_dir):
        parser.error(f"{state_dir} has no plane token: start the plane with `pipeline local up`")
    try:
        limits = environ_limits()  # checked first: parser.error still reaches plane.log
        spans_quiet(os.environ)
        if args.log_file is not None:
            configure_logging(args.log_file)  # size-capped, repeats suppressed (pipeline.local.plane.logs)
    except ValueError as exc:
        parser.error(str(exc))
    asyncio.run(serve(state_dir, args.id, limits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
