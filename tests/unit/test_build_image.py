"""Real builds with buildah from ``FROM scratch`` Dockerfiles (no registry access needed)."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest

from pipeline.build import Builder, BuilderName, BuildRequest, archive_path, build_image
from pipeline.core.errors import NotFoundError, PlatformError
from pipeline.oci import OciArchive
from tests.support.images import COMMIT, CREATED, buildah_or_skip, scratch_image


def test_build_writes_a_labelled_oci_archive_with_one_layer_per_copy(tmp_path: Path) -> None:
    builder = buildah_or_skip(tmp_path / "storage")
    lines: list[str] = []
    context = tmp_path / "context"
    context.mkdir()
    (context / "app").write_bytes(b"#!/bin/true\n")
    (context / "data.bin").write_bytes(os.urandom(200_000))
    (context / "Dockerfile").write_text("FROM scratch\nCOPY app /app\nCOPY data.bin /data.bin\n")
    out = archive_path(tmp_path, "orders", COMMIT)
    request = BuildRequest("orders", context, context / "Dockerfile", COMMIT, CREATED, out)

    result = build_image(request, builder, log=lines.append)

    assert result.archive == tmp_path / ".pipeline/images/orders" / f"{COMMIT}.oci.tar"
    assert result.archive.is_file()
    assert not result.archive.with_name(result.archive.name + ".partial").exists()
    archive = OciArchive.open(result.archive)
    image = archive.image()
    assert result.digest == image.digest == "sha256:" + hashlib.sha256(image.manifest).hexdigest()
    assert len(image.layers) == 2
    labels = archive.labels(image)
    assert labels["org.opencontainers.image.revision"] == COMMIT
    assert labels["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert labels["pipeline.service"] == "orders"
    assert any("COPY" in line for line in lines), "the builder's output is streamed to the log"
    with tarfile.open(result.archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    assert index["manifests"][0]["digest"] == result.digest


def test_rebuilding_the_same_commit_from_empty_storage_gives_the_same_digest(tmp_path: Path) -> None:
    files = {"app": b"v1\n", "data.bin": os.urandom(50_000)}
    first = scratch_image(buildah_or_skip(tmp_path / "s1"), tmp_path / "a", files)
    second = scratch_image(buildah_or_skip(tmp_path / "s2"), tmp_path / "b", files)

    assert OciArchive.open(first).image().digest == OciArchive.open(second).image().digest


def test_a_failing_build_reports_the_builder_output_and_leaves_no_archive(tmp_path: Path) -> None:
    builder = buildah_or_skip(tmp_path / "storage")
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY missing.txt /missing.txt\n")
    out = tmp_path / "out" / "x.oci.tar"
    request = BuildRequest("orders", context, context / "Dockerfile", COMMIT, CREATED, out)

    with pytest.raises(PlatformError) as caught:
        build_image(request, builder)

    assert "building orders with buildah failed" in caught.value.message
    assert "missing.txt" in caught.value.message, "the builder's own error is shown"
    assert caught.value.exit_code == 7
    assert not out.exists()
    assert list(out.parent.iterdir()) == []


def test_a_missing_context_is_reported_before_running_the_builder(tmp_path: Path) -> None:
    builder = Builder(BuilderName.BUILDAH, "/nonexistent/buildah")
    request = BuildRequest(
        "orders", tmp_path / "nope", tmp_path / "nope/Dockerfile", COMMIT, CREATED, tmp_path / "x.oci.tar"
    )

    with pytest.raises(NotFoundError, match="nope does not exist"):
        build_image(request, builder)


def test_a_builder_that_cannot_start_is_a_platform_error_with_an_install_hint(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    builder = Builder(BuilderName.BUILDAH, str(tmp_path / "vanished-buildah"))
    request = BuildRequest(
        "orders", tmp_path, tmp_path / "Dockerfile", COMMIT, CREATED, tmp_path / "x.oci.tar"
    )

    with pytest.raises(PlatformError, match="cannot run") as caught:
        build_image(request, builder)

    assert "apt-get install buildah" in caught.value.hint
    assert not (tmp_path / "x.oci.tar").exists()
