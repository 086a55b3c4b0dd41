"""The one project-root finder every command, completion and the local commands use."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.errors import NotFoundError
from pipeline.project_root import SERVICES_DIR, find_root, nearest_root


def test_the_nearest_folder_with_a_pipeline_yaml_is_the_root(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text("project: x\n")
    deep = tmp_path / "services" / "orders" / "src"
    deep.mkdir(parents=True)
    assert nearest_root(deep) == tmp_path.resolve()
    assert find_root(deep) == tmp_path.resolve()


def test_outside_a_project_there_is_no_root_and_commands_say_what_to_do(tmp_path: Path) -> None:
    assert nearest_root(tmp_path) is None  # pytest's temporary folders lie outside any project
    with pytest.raises(NotFoundError, match=r"no pipeline\.yaml in") as missing:
        find_root(tmp_path)
    assert "--root PATH" in missing.value.hint


def test_with_another_marker_the_start_folder_stands_in_when_none_is_found(tmp_path: Path) -> None:
    (tmp_path / SERVICES_DIR).mkdir()
    inner = tmp_path / "ops"
    inner.mkdir()
    assert find_root(inner, SERVICES_DIR) == tmp_path.resolve()
    lone = tmp_path / "ops" / "deeper"
    lone.mkdir()
    assert find_root(lone, "no-such-marker") == lone.resolve()
