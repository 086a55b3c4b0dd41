"""Fixtures of the workflow end-to-end tests: one world per module (Dev and Ops
repositories, a fake GitHub API, one local platform), seeded with a first release of
``orders`` in dev, staging and prod so that every later release has one to return to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workflows.support.story import open_pull_numbers, review_and_merge, serving
from tests.workflows.support.world import OPS_APP_TOKEN, OPS_MEMBER, OPS_REPO, World


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    made = World(Path(tmp_path_factory.mktemp("workflows")) / "world")
    try:
        made.build()
        first = made.head()
        made.pipeline("deploy", "orders", "--env", "dev", "--ref", first, "--yes")
        made.pipeline("promote", "orders", "--from", "dev", "--to", "staging", "--yes")
        promote_first_release(made)
        yield made
    finally:
        made.close()


def promote_first_release(world: World) -> None:
    """The first release into prod the way Ops does it, by hand: handoff, review, approval, promote."""
    ops_project = world.ops / "pipeline.yaml"
    digest = serving(world, "orders", "staging")
    world.pipeline("handoff", "orders", "--from", "staging", "--release", digest, "--ops-repo", OPS_REPO,
                   token=OPS_APP_TOKEN)
    (number,) = open_pull_numbers(world, "orders")
    review_and_merge(world, number, OPS_MEMBER)
    world.pipeline("approval", "github-pr", "--repo", OPS_REPO, "--pr", str(number), "--env", "prod",
                   project=ops_project, token=OPS_APP_TOKEN)
    world.pipeline("promote", "orders", "--from", "staging", "--to", "prod", "--release", digest, "--yes",
                   project=ops_project)
