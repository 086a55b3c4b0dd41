"""Fixtures for the local data plane tests: a git project with a tiny HTTP service, a
running plane (stopped, with an orphan check, after the test) and adapters. The helpers
they use are in ``tests/local/support/plane.py``.

Every process started is stopped at teardown.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.local.plane.lifecycle import PlaneInfo
from tests.local.support.plane import (
    APP,
    SERVICE_YAML,
    Adapters,
    Project,
    free_port_pair,
    git,
    make_adapters,
    running_plane,
)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A git repository with pipeline.yaml (env ``dev`` on a free port pair) and ``orders``."""
    root = tmp_path / "repo"
    service = root / "services" / "orders"
    service.mkdir(parents=True)
    port = free_port_pair()
    (root / "pipeline.yaml").write_text(textwrap.dedent(f"""\
        project: shop
        organisations: {{dev: {{members: []}}, ops: {{members: []}}}}
        environments:
          dev: {{platform: local, owner: dev, local: {{port: {port}}}}}
        """))
    (root / ".gitignore").write_text(".pipeline/\nreports/\n")
    (service / "app.py").write_text(APP)
    (service / "service.yaml").write_text(SERVICE_YAML)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "test")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "orders v1")
    return Project(root, port, git(root, "rev-parse", "HEAD"))


@pytest.fixture
def plane(project: Project) -> Iterator[PlaneInfo]:
    """The project's running plane; at teardown it is stopped and no process of it is left."""
    with running_plane(project) as info:
        yield info


@pytest.fixture
def adapters(project: Project, plane: PlaneInfo) -> Adapters:
    """LocalCompute/Router/Metrics of ``orders`` in ``dev``: 2 replicas of ``python app.py``."""
    return make_adapters(project)
