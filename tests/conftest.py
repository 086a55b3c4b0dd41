"""Fixtures shared by every test tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_github import FakeGitHub, running


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """The fake GitHub REST API on a free loopback port (``fake_github.url``)."""
    with running() as fake:
        yield fake
