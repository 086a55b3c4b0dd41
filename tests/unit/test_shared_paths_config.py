"""``shared_paths`` in pipeline.yaml: globs inside the project, reported at file:line."""

from __future__ import annotations

import pytest

from pipeline.config import load_project
from pipeline.core.errors import ConfigError
from tests.unit.support.project import WriteProject

PROJECT = """\
project: shop
organisations: {dev: {}}
environments:
  dev: {platform: local, owner: dev, local: {port: 18100}}
shared_paths:
  - pipeline.yaml
  - SECOND
"""


def test_shared_paths_are_loaded_as_globs(write_project: WriteProject) -> None:
    project = load_project(write_project(PROJECT.replace("SECOND", '"loadtests/common*.py"')))
    assert project.config.shared_paths == ("pipeline.yaml", "loadtests/common*.py")


@pytest.mark.parametrize("second", ["../other-repo/**", "/etc/passwd", "7"])
def test_a_shared_path_outside_the_project_or_not_text_is_reported_at_its_line(
    write_project: WriteProject, second: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_project(write_project(PROJECT.replace("SECOND", second)))
    assert [p.split(": ")[0] for p in caught.value.problems] == ["pipeline.yaml:7"]
    assert "shared_paths[1]" in caught.value.problems[0]
