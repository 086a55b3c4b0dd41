"""The example orders service as a real process on a free port, for load runs in tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.loadtest.processes import free_port

REPO = Path(__file__).resolve().parents[3]


@contextmanager
def orders_running(tmp: Path) -> Iterator[str]:
    """``python -m app`` from services/orders, healthy; yields its base URL, stops it after."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "ORDERS_DB": str(tmp / f"orders-{port}.db"), "FAIL_RATE": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=REPO / "services" / "orders",
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                with urllib.request.urlopen(url + "/health", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"orders exited with {proc.returncode}") from None
                time.sleep(0.05)
        else:
            raise RuntimeError("orders did not become healthy")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
