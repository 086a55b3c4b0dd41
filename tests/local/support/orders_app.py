"""The example orders service as a real process on a free port, for load runs in tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pipeline.loadtest.processes import free_port

REPO = Path(__file__).resolve().parents[3]
ORDERS = REPO / "services" / "orders"
LOCUSTFILE = REPO / "loadtests" / "orders.py"


def start_orders(
    tmp: Path, fail_rate: float = 0.0, extra_env: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m app`` from services/orders on a free port, ready to serve; ``extra_env``
    adds settings (e.g. ``ORDERS_DB_CONNECTIONS``)."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "ORDERS_DB": str(tmp / f"orders-{port}.db"),
        "FAIL_RATE": str(fail_rate),
        **(extra_env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app"], cwd=ORDERS, env=env, stdout=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            with urllib.request.urlopen(url + "/health", timeout=1):
                return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"orders exited with {proc.returncode}") from None
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError("orders did not become healthy")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def orders_running(tmp: Path) -> Iterator[str]:
    """``start_orders`` as a context: yields the healthy service's base URL, stops it after."""
    proc, url = start_orders(tmp)
    try:
        yield url
    finally:
        stop(proc)
