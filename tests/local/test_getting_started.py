"""``docs/getting-started.md`` followed verbatim on a fresh clone of the project.

Every ```sh block of the guide runs, in order, in one shell, on a clone whose only changes
are documented settings for tests (free ports, ``max_pause``, the synthetic traffic rate,
short load stages: see ``support/example.py``). Then the acceptance of quiet environments
is checked in the state store: with no outside traffic, the second release succeeded in
dev on analyses that saw at least ``min_requests`` per slot, and the bad one rolled back.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.core.model import ServiceRef
from pipeline.core.ports import Record
from tests.local.support.example import ROOT, Example, environ, example_clone, shell_blocks

GUIDE = ROOT / "docs" / "getting-started.md"
SKIPPED = {
    "Install",  # the toolkit is installed already; pip would touch the test's environment
    "Run the demo",  # its own test runs it (tests/local/test_demo.py); minutes, not seconds
}
MIN_REQUESTS = 20  # services/orders/service.yaml deploy.analysis.min_requests


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Example]:
    example = example_clone(tmp_path)
    try:
        yield example
    finally:
        example.stop()


def outcomes(records: list[Record]) -> list[tuple[str, str]]:
    return [(r.action, r.detail) for r in records if r.action.startswith("deployment.")]


@pytest.mark.slow
def test_the_getting_started_guide_works_verbatim_on_a_fresh_clone(example: Example) -> None:
    blocks = shell_blocks(GUIDE.read_text(), SKIPPED)
    headings = {heading for heading, _ in blocks}
    assert "Deploy, promote, roll back" in headings and not headings & SKIPPED
    script = "set -e\n" + "\n".join(code for _, code in blocks)
    proc = subprocess.run(["bash", "-c", script], cwd=example.root, capture_output=True, text=True,
                          timeout=600, env=environ(), check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "rolled back (exit code 6)" in proc.stdout

    store = example.store()
    dev = store.history(ServiceRef("orders", "dev"))
    assert [action for action, _ in outcomes(dev)] == [
        "deployment.succeeded", "deployment.succeeded", "deployment.rolled_back",
    ]
    assert outcomes(dev)[2][1].startswith("analysis failed: error_rate")
    second = _deployment(dev, 1)
    verdicts = [r for r in second if "analysis" in r.data and r.detail.startswith("analysis ")]
    assert [r.detail.split(":")[0] for r in verdicts] == ["analysis successful"] * 2  # both steps
    judged = [r.data["analysis"] for r in verdicts]
    for figures in judged:
        assert figures["canary"]["requests"] >= MIN_REQUESTS
        assert figures["baseline"]["requests"] >= MIN_REQUESTS
        assert 0 < figures["canary"]["synthetic"] <= figures["canary"]["requests"]

    staging = outcomes(store.history(ServiceRef("orders", "staging")))
    assert [action for action, _ in staging] == ["deployment.succeeded"] * 3  # first, 1.1.0, rollback
    prod = outcomes(store.history(ServiceRef("orders", "prod")))
    assert prod == [("deployment.succeeded", "promoted")]


def _deployment(records: list[Record], index: int) -> list[Record]:
    """The records of the ``index``-th deployment (0-based) in ``records``."""
    ids = list(dict.fromkeys(r.deployment for r in records if r.kind == "history"))
    return [r for r in records if r.deployment == ids[index]]
