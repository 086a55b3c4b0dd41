"""Which builder is used, what it is asked to do, and which commit an image is built from.

Detection only looks at PATH (and docker's plugin folders), so these tests put executable
files named like the builders into a temporary folder and point PATH at it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeline.build import BuilderName, BuildRequest, detect_builder, source_revision
from pipeline.core.errors import NotFoundError, UsageError


def installed(folder: Path, *names: str) -> str:
    """Make executables called ``names`` in ``folder``; return it as a PATH value."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        exe = folder / name
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
    return str(folder)


def test_docker_with_buildx_comes_first_then_podman_then_buildah(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    installed(plugins, "docker-buildx")
    path = installed(tmp_path / "bin", "docker", "podman", "buildah")

    assert detect_builder(path=path, plugin_dirs=[plugins]).name is BuilderName.DOCKER
    assert detect_builder(path=path, plugin_dirs=[]).name is BuilderName.PODMAN
    only_buildah = installed(tmp_path / "bin2", "docker", "buildah")
    chosen = detect_builder(path=only_buildah, plugin_dirs=[])
    assert chosen.name is BuilderName.BUILDAH
    assert chosen.executable == str(tmp_path / "bin2" / "buildah")
    assert chosen.global_args == ("--storage-driver", "vfs")


def test_a_standalone_docker_buildx_on_path_counts_as_the_plugin(tmp_path: Path) -> None:
    path = installed(tmp_path / "bin", "docker", "docker-buildx", "buildah")

    assert detect_builder(path=path, plugin_dirs=[]).name is BuilderName.DOCKER


def test_the_preferred_builder_wins_over_the_detection_order(tmp_path: Path) -> None:
    path = installed(tmp_path / "bin", "docker", "docker-buildx", "podman", "buildah")

    assert detect_builder("buildah", path=path, plugin_dirs=[]).name is BuilderName.BUILDAH
    assert detect_builder("podman", path=path, plugin_dirs=[]).name is BuilderName.PODMAN


def test_no_builder_names_the_three_options_and_how_to_install_one(tmp_path: Path) -> None:
    path = installed(tmp_path / "bin", "docker")  # a docker client without buildx is no builder

    with pytest.raises(NotFoundError) as caught:
        detect_builder(path=path, plugin_dirs=[tmp_path / "no-plugins"])

    error = caught.value
    assert "no image builder found" in error.message
    for option in ("docker buildx", "podman", "buildah"):
        assert option in error.message
    assert "apt-get install buildah" in error.hint
    assert "apt-get install podman" in error.hint
    assert error.exit_code == 3


def test_a_preferred_builder_that_is_missing_is_named(tmp_path: Path) -> None:
    path = installed(tmp_path / "bin", "buildah")

    with pytest.raises(NotFoundError, match="podman is not installed"):
        detect_builder("podman", path=path, plugin_dirs=[])
    with pytest.raises(NotFoundError, match="unknown builder 'kaniko'"):
        detect_builder("kaniko", path=path, plugin_dirs=[])


def request(tmp_path: Path) -> BuildRequest:
    return BuildRequest(
        "orders",
        tmp_path / "ctx",
        tmp_path / "ctx/Dockerfile",
        "abc123",
        1_700_000_000.0,
        tmp_path / "out.oci.tar",
        build_args=(("PY", "3.11"),),
        target="runtime",
    )


def test_buildah_builds_daemonless_with_labels_and_a_fixed_timestamp_then_exports_an_oci_archive(
    tmp_path: Path,
) -> None:
    builder = detect_builder(path=installed(tmp_path / "bin", "buildah"), plugin_dirs=[])
    build, export = builder.with_storage(tmp_path / "store").commands(request(tmp_path), tmp_path / "o.tar")

    storage = ["--root", str(tmp_path / "store/root"), "--runroot", str(tmp_path / "store/run")]
    assert build[:8] == [builder.executable, "--storage-driver", "vfs", *storage, "bud"]
    assert build[8:10] == ["--isolation", "chroot"]
    assert build[build.index("--timestamp") + 1] == "1700000000"
    assert "org.opencontainers.image.revision=abc123" in build
    assert "org.opencontainers.image.created=2023-11-14T22:13:20Z" in build
    assert "pipeline.service=orders" in build
    assert build[build.index("--build-arg") + 1] == "PY=3.11"
    assert build[build.index("--target") + 1] == "runtime"
    assert build[-1] == str(tmp_path / "ctx")
    assert export[-3:] == ["push", "localhost/pipeline/orders:abc123", f"oci-archive:{tmp_path / 'o.tar'}"]


def test_docker_buildx_writes_the_oci_archive_directly_without_attestations(tmp_path: Path) -> None:
    path = installed(tmp_path / "bin", "docker", "docker-buildx")
    (command,) = detect_builder(path=path, plugin_dirs=[]).commands(request(tmp_path), tmp_path / "o.tar")

    assert command[1:4] == ["buildx", "build", "--provenance=false"]
    assert (
        command[command.index("--output") + 1] == f"type=oci,dest={tmp_path / 'o.tar'},rewrite-timestamp=true"
    )


def git(cwd: Path, *args: str) -> str:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(cwd),
        "GIT_COMMITTER_DATE": "2024-01-02T03:04:05Z",
    }
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd, check=True, capture_output=True, text=True, env=env,
    ).stdout.strip()  # fmt: skip


def test_the_image_is_built_from_head_at_its_commit_time_and_marked_dirty_when_changed(
    tmp_path: Path,
) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "svc/app.py").write_text("print(1)\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "one")
    head = git(tmp_path, "rev-parse", "HEAD")

    assert source_revision(tmp_path, tmp_path / "svc") == (head, 1704164645.0)
    (tmp_path / "other/notes.txt").write_text("elsewhere\n")
    assert source_revision(tmp_path, tmp_path / "svc")[0] == head, "changes outside the context do not count"
    (tmp_path / ".pipeline").mkdir()
    (tmp_path / ".pipeline/state").write_text("x")
    (tmp_path / "svc/new.py").write_text("print(2)\n")
    assert source_revision(tmp_path, tmp_path / "svc")[0] == head + "-dirty"


def test_building_outside_a_git_checkout_asks_for_a_commit(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        source_revision(tmp_path)

    assert "pass --commit" in caught.value.hint
