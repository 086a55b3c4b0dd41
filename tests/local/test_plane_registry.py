"""LocalRegistry on a real git repository: deterministic digests, tags as versions, digest
look-ups, snapshots, worktrees and clear errors."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from pipeline.core.errors import NotFoundError
from pipeline.local.registry import LocalRegistry
from tests.local.support.plane import Project, git


def test_the_same_commit_always_gives_the_same_digest(project: Project, tmp_path: Path) -> None:
    first = LocalRegistry(project.root, project.state_dir).resolve("orders")
    again = LocalRegistry(project.root, tmp_path / "elsewhere").resolve("orders", project.commit)
    assert first == again
    assert first.commit == project.commit and first.version == project.commit[:7]
    archive = project.state_dir / "registry" / "orders" / f"{first.digest[7:]}.tar"
    assert "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest() == first.digest
    assert first.image == f"local/orders@{first.digest}"
    later = project.commit_change("services/orders/NOTES", "x", "change")
    assert LocalRegistry(project.root, project.state_dir).resolve("orders", later).digest != first.digest


def test_a_tag_names_the_version_and_digests_resolve_to_stored_releases(project: Project) -> None:
    git(project.root, "tag", "v1.2.0")
    registry = LocalRegistry(project.root, project.state_dir)
    release = registry.resolve("orders", "v1.2.0")
    assert release.version == "v1.2.0" and release.commit == project.commit
    assert registry.resolve("orders", release.digest) == release
    assert registry.resolve("orders", release.image) == release
    with pytest.raises(NotFoundError, match="no release of orders with digest"):
        registry.resolve("orders", "sha256:" + "a" * 64)


def test_an_unknown_reference_or_a_folder_outside_git_is_a_clear_error(
    project: Project, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError, match="matches 'no-such-branch'") as caught:
        LocalRegistry(project.root, project.state_dir).resolve("orders", "no-such-branch")
    assert "git rev-parse" in caught.value.hint
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotFoundError, match="not inside a git repository"):
        LocalRegistry(plain, plain / ".pipeline").resolve("orders")


def test_snapshots_hold_the_commits_tree_and_survive_a_lost_extraction(project: Project) -> None:
    registry = LocalRegistry(project.root, project.state_dir)
    release = registry.resolve("orders")
    (project.root / "services" / "orders" / "uncommitted.txt").write_text("not in the release")
    snapshot = registry.snapshot_dir(release)
    assert snapshot == project.state_dir / "releases" / "orders" / release.digest[7:19]
    assert (snapshot / "services" / "orders" / "app.py").read_text() == (
        project.root / "services" / "orders" / "app.py"
    ).read_text()
    assert not (snapshot / "services" / "orders" / "uncommitted.txt").exists()
    shutil.rmtree(snapshot)
    assert (registry.snapshot_dir(release) / "pipeline.yaml").is_file()  # extracted again
    shutil.rmtree(snapshot)
    (project.state_dir / "registry" / "orders" / f"{release.digest[7:]}.tar").unlink()
    with pytest.raises(NotFoundError, match="no stored snapshot"):
        registry.snapshot_dir(release)


def test_a_commit_or_branch_of_another_worktree_resolves(project: Project) -> None:
    worktree = project.root.parent / "wt"
    git(project.root, "worktree", "add", "-q", "-b", "experiment", str(worktree))
    (worktree / "services" / "orders" / "fault.json").write_text('{"error_rate": 1}')
    git(worktree, "add", "-A")
    git(worktree, "commit", "-q", "-m", "experiment")
    sha = git(worktree, "rev-parse", "HEAD")
    registry = LocalRegistry(project.root, project.state_dir)
    by_sha, by_branch = registry.resolve("orders", sha), registry.resolve("orders", "experiment")
    assert by_sha == by_branch and by_sha.commit == sha
    assert (registry.snapshot_dir(by_sha) / "services" / "orders" / "fault.json").is_file()
    assert registry.resolve("orders", "HEAD").commit == project.commit  # HEAD is this worktree's


def test_a_project_in_a_subfolder_of_the_repository_gets_its_own_folder_of_the_snapshot(
    project: Project,
) -> None:
    sub = project.root / "services" / "orders"
    registry = LocalRegistry(sub, sub / ".pipeline")
    release = registry.resolve("orders")
    assert (registry.snapshot_dir(release) / "app.py").is_file()
