"""Shared fixtures for unit tests: a project directory written from YAML snippets."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.unit.support.project import WriteProject


@pytest.fixture
def write_project(tmp_path: Path) -> WriteProject:
    """Write ``pipeline.yaml`` and ``services/<name>/service.yaml`` files under ``tmp_path``.

    ``services`` maps a folder name to the file's text, or to None for a folder without
    a service.yaml. Texts are dedented, so tests can keep them indented; line numbers
    count from the first line of the dedented text.
    """

    def write(pipeline: str | None, services: dict[str, str | None] | None = None) -> Path:
        if pipeline is not None:
            (tmp_path / "pipeline.yaml").write_text(_clean(pipeline), encoding="utf-8")
        for name, text in (services or {}).items():
            folder = tmp_path / "services" / name
            folder.mkdir(parents=True, exist_ok=True)
            if text is not None:
                (folder / "service.yaml").write_text(_clean(text), encoding="utf-8")
        return tmp_path

    return write


def _clean(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")
