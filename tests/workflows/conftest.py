"""Fixtures of the workflow end-to-end tests: one world per module (Dev and Ops
repositories, a fake GitHub API, one local platform), seeded with a first release of
``orders`` in dev, staging and prod so that every later release has one to return to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workflows.support.world import OPS_MEMBER, World


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    made = World(Path(tmp_path_factory.mktemp("workflows")) / "world")
    try:
        made.build()
        first = made.head()
        ops_project = made.ops / "pipeline.yaml"
        made.pipeline("deploy", "orders", "--env", "dev", "--ref", first, "--yes")
        made.pipeline("promote", "orders", "--from", "dev", "--to", "staging", "--yes")
        made.pipeline("approve", "orders", "--env", "prod", project=ops_project, actor=OPS_MEMBER)
        made.pipeline("promote", "orders", "--from", "staging", "--to", "prod", "--yes", project=ops_project)
        yield made
    finally:
        made.close()
