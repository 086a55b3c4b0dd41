"""The demo's edge scene on a real local plane: notify behind its API edge.

The scene runs as ``pipeline demo`` runs it (a workspace cloned from the committed project,
the same engine and adapters), after a first deployment of notify alone. The project is
cloned first with its dev router on free ports, so the test never collides with a demo or
another plane on the example's fixed ports. Every fact comes from real requests: a caller
without a key and a key from a denied loopback address get 403, a trial key past its
quota gets 429 with Retry-After, the edge reports a cache hit ratio during the canary, and
the new version meets no cold start once traffic moves.
"""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

from rich.console import Console

from pipeline import operations as ops
from pipeline.core.model import ServiceRef
from pipeline.demo.edge_scene import DENIED_PEER, TRIAL_QUOTA, EdgeScene
from pipeline.demo.scenes import FIRST, NOTIFY_CANARY, BackgroundLoad, Demo
from pipeline.demo.workspace import fresh_clone
from tests.local.support.plane import free_port_pair

ROOT = Path(__file__).resolve().parents[2]


def project_on_free_ports(tmp: Path) -> Path:
    clone = tmp / "project"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    config = clone / "pipeline.yaml"
    text = config.read_text().replace("local: {port: 8100}", f"local: {{port: {free_port_pair()}}}")
    config.write_text(text)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "--quiet", "-am",
                    "dev on free ports"], cwd=clone, check=True)
    return clone


def test_the_edge_scene_refuses_keyless_and_denied_callers_throttles_a_quota_and_stays_warm(
    tmp_path: Path,
) -> None:
    output = io.StringIO()
    demo = Demo(project_on_free_ports(tmp_path), Console(file=output, width=250, force_terminal=False))
    demo.workspace = fresh_clone(demo.root, demo.work)
    demo.reload()
    try:
        first = demo.app.release("notify", "dev", None, "HEAD")
        state = ops.deploy(demo.ctx("dev"), ServiceRef("notify", "dev"), first, FIRST)
        assert state.phase.value == "succeeded"

        outcome, detail = EdgeScene(demo, NOTIFY_CANARY, BackgroundLoad).run()
    finally:
        demo.stop_plane()

    assert outcome == "succeeded", output.getvalue()[-3000:]
    assert "no key: 403 Forbidden: this API needs an x-api-key header" in detail
    assert f"from {DENIED_PEER}: 403 Forbidden: the caller's address is not allowed" in detail
    assert re.search(rf"trial key, request {TRIAL_QUOTA + 1}: 429 Limit Exceeded: .*Retry-After \d+s", detail)
    assert re.search(r"cache hit ratio: \d+%", detail)
    assert re.search(r"new version: [1-9]\d* invocations, 0 cold starts once traffic moved", detail)
    assert "load: 0 failed of" in detail
