"""``pipeline demo`` end to end: every scene ends as expected, and the report is written.

The demo clones the committed project, so this runs what a new user runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_demo_runs_every_scene_as_expected() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli.main", "--root", str(ROOT), "demo"],
        capture_output=True, text=True, timeout=420, check=False,
        env={**os.environ, "COLUMNS": "220", "PIPELINE_ACTOR": "alice"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for scene in ("good canary of orders", "bad canary of orders", "Lambda canary of notify",
                  "promote the same digest", "pipeline rollback in dev", "notify behind its API edge"):
        assert scene in proc.stderr
    assert "0 failed of" in proc.stderr  # the good canary under locust load
    assert "rolled_back" in proc.stderr and "analysis failed" in proc.stderr
    assert "same digest as dev: True" in proc.stderr
    report = ROOT / ".pipeline" / "demo" / "report.html"
    assert report.is_file() and "<svg" in report.read_text()
