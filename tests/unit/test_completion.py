"""Shell completion: the real CLI asked the way bash asks it (``_PIPELINE_COMPLETE``).

Services and environments come from the project's files; a broken project completes
nothing and prints no error into the shell.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli.main import cli
from tests.unit.support.project import REPO_ROOT, WriteProject

PIPELINE = """
    project: shop
    organisations: {dev: {}}
    environments:
      qa: {platform: local, owner: dev, local: {port: 8100}}
      live: {platform: local, owner: dev, local: {port: 8200}}
"""


def service(name: str) -> str:
    return f"name: {name}\nkind: ecs\nowner: dev\n"


def complete(root: Path, line: str) -> list[str]:
    """What bash would offer for ``pipeline --root ROOT <line>`` (the last word is completed)."""
    words = ["pipeline", "--root", str(root), *line.split()]
    if line.endswith(" "):
        words.append("")
    result = CliRunner().invoke(
        cli,
        [],
        prog_name="pipeline",
        env={
            "_PIPELINE_COMPLETE": "bash_complete",
            "COMP_WORDS": " ".join(words),
            "COMP_CWORD": str(len(words) - 1),
        },
        catch_exceptions=False,
    )
    assert result.exit_code == 0 and result.stderr == ""
    return [item.split(",", 1)[1] for item in result.stdout.splitlines() if item]


def test_service_arguments_complete_the_projects_services(write_project: WriteProject) -> None:
    services = {"orders": service("orders"), "billing": service("billing"), "empty": None}
    root = write_project(PIPELINE, services)
    assert complete(root, "deploy ") == ["billing", "orders"]
    assert complete(root, "history or") == ["orders"]
    assert complete(root, "status ") == ["billing", "orders"]


def test_env_options_complete_the_projects_environments(write_project: WriteProject) -> None:
    root = write_project(PIPELINE, {"orders": service("orders")})
    assert complete(root, "deploy orders --env ") == ["live", "qa"]
    assert complete(root, "promote orders --from q") == ["qa"]
    assert complete(root, "rollback orders --env l") == ["live"]


def test_commands_complete_too(write_project: WriteProject) -> None:
    root = write_project(PIPELINE, {"orders": service("orders")})
    offered = complete(root, "st")
    assert "status" in offered and "deploy" not in offered


def test_a_broken_project_completes_nothing_and_says_nothing(write_project: WriteProject) -> None:
    root = write_project("environments: [unclosed\n", {"orders": "name: [oops\n"})
    assert complete(root, "deploy orders --env ") == []
    assert complete(root, "deploy ") == ["orders"]  # an unreadable service.yaml: its folder's name
    assert complete(Path("/nonexistent-project"), "deploy ") == []


def test_the_installed_command_completes_the_example_project() -> None:
    words = f"pipeline --root {REPO_ROOT} deploy "
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from pipeline.cli.main import main; sys.exit(main())"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "_PIPELINE_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": "4"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["plain,catalog", "plain,notify", "plain,orders"]
