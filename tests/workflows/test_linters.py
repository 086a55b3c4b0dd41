"""actionlint (with shellcheck over every run: script) and zizmor report nothing of medium
severity or above, over the Dev ``.github`` and the Ops template ``ops/.github``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.workflows.support.files import OPS_GITHUB, OPS_ROOT, REPO_ROOT


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: pip install -e '.[dev]' (shellcheck: apt-get install shellcheck)"
    return path


def run(args: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("root", [REPO_ROOT, OPS_ROOT], ids=["dev", "ops"])
def test_actionlint_with_shellcheck_finds_nothing(root: Path) -> None:
    tool("shellcheck")
    files = sorted(str(p) for p in (root / ".github" / "workflows").glob("*.yml"))
    assert files
    result = run([tool("actionlint"), "-shellcheck", tool("shellcheck"), *files], cwd=str(REPO_ROOT))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_an_expression_inside_run(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\npermissions: {}\njobs:\n  j:\n    runs-on: ubuntu-24.04\n    permissions: {}\n"
        "    steps:\n      - run: echo ${{ github.event.head_commit.message }}\n"
    )
    result = run([tool("actionlint"), str(bad)], cwd=str(REPO_ROOT))
    assert result.returncode != 0
    assert "untrusted" in result.stdout


@pytest.mark.parametrize("folder", [REPO_ROOT / ".github", OPS_GITHUB], ids=["dev", "ops"])
def test_zizmor_finds_nothing_of_medium_severity_or_above(folder: Path) -> None:
    result = run([tool("zizmor"), "--offline", "--min-severity", "medium", str(folder)], cwd=str(REPO_ROOT))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr
