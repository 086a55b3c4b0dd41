"""Change detection on a real git repository."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from pipeline.changes import ZERO_SHA, affected, detect, matches
from pipeline.core.errors import UsageError

PATHS = {"orders": ("loadtests/orders.py", "libs/shared/**"), "catalog": ("loadtests/catalog.py",)}


@pytest.mark.parametrize(
    ("path", "glob", "hit"),
    [
        ("libs/shared/a/b.py", "libs/shared/**", True),
        ("libs/shared.py", "libs/shared/**", False),
        ("services/x/app.py", "services/*/app.py", True),
        ("services/x/y/app.py", "services/*/app.py", False),
        ("a/b/c.txt", "**/c.txt", True),
        ("c.txt", "**/c.txt", True),
    ],
)
def test_globs(path: str, glob: str, hit: bool) -> None:
    assert matches(path, [glob]) is hit


def test_service_folder_counts_without_a_glob() -> None:
    assert affected(["services/catalog/app.py", "README.md"], PATHS) == ("catalog",)


def _commit(repo: git.Repo, files: dict[str, str], message: str) -> str:
    root = Path(repo.working_tree_dir or ".")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    repo.index.add(list(files))
    return repo.index.commit(message).hexsha


def test_detects_services_changed_between_two_real_commits(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    base = _commit(
        repo, {"services/orders/app.py": "1", "services/catalog/app.py": "1", "libs/shared/x.py": "1"}, "a"
    )
    head = _commit(repo, {"libs/shared/x.py": "2", "docs/readme.md": "x"}, "b")
    result = detect(tmp_path, base, head, PATHS)
    assert result.services == ("orders",)
    assert result.files == ("docs/readme.md", "libs/shared/x.py")
    assert not result.everything


def test_a_zero_base_marks_every_service(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    head = _commit(repo, {"a.txt": "1"}, "a")
    result = detect(tmp_path, ZERO_SHA, head, PATHS)
    assert result.everything and result.services == ("catalog", "orders")


def test_an_unknown_head_is_a_usage_error(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    base = _commit(repo, {"a.txt": "1"}, "a")
    with pytest.raises(UsageError, match="unknown --head"):
        detect(tmp_path, base, "f" * 40, PATHS)
