"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
from collections.abc import Iterator

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist starts its workers with COLUMNS=80; a plain run has no COLUMNS when its
    # output is not a terminal. The CLI reads COLUMNS as the user's explicit width, so the
    # workers drop it to test what a pipe or a CI log gets.
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)

import pytest

from tests.support.fake_github import FakeGitHub, running


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """The fake GitHub REST API on a free loopback port (``fake_github.url``)."""
    with running() as fake:
        yield fake
