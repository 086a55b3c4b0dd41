"""Reading OCI archives: a real one built by buildah, and variants derived from it
(layout directory, nested index, several platforms, corrupt or missing parts)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pipeline.core.errors import NotFoundError, UsageError
from pipeline.oci import OCI_INDEX, OciArchive, OciImage
from tests.support.images import COMMIT, buildah_or_skip, extract_layout, scratch_image

BIG = os.urandom(3 * 1024 * 1024)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("oci")
    builder = buildah_or_skip(folder / "storage")
    return scratch_image(builder, folder, {"app": b"#!/bin/true\n", "big.bin": BIG})


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def write_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def blob(data: bytes) -> tuple[str, str]:
    hexdigest = hashlib.sha256(data).hexdigest()
    return f"sha256:{hexdigest}", f"blobs/sha256/{hexdigest}"


def test_a_buildah_archive_yields_its_manifest_config_and_layers(built: Path) -> None:
    archive = OciArchive.open(built)
    image = archive.image()
    files = members(built)
    index = json.loads(files["index.json"])

    assert image.digest == index["manifests"][0]["digest"]
    assert image.digest == "sha256:" + hashlib.sha256(image.manifest).hexdigest()
    assert image.manifest == files["blobs/sha256/" + image.digest[7:]], "manifest bytes are kept verbatim"
    assert image.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert len(image.layers) == 2
    assert image.blobs[0] == image.config
    assert image.size == sum(b.size for b in image.blobs)
    assert image.layers[1].size >= len(BIG), "the random file does not compress"
    assert archive.labels(image)["org.opencontainers.image.revision"] == COMMIT
    for descriptor in image.blobs:
        data = archive.read(descriptor.digest, descriptor.size)
        assert b"".join(archive.chunks(descriptor.digest, 1000)) == data


def test_chunks_are_at_most_the_requested_size(built: Path) -> None:
    archive = OciArchive.open(built)
    layer = archive.image().layers[1]

    sizes = [len(piece) for piece in archive.chunks(layer.digest, 1024 * 1024)]

    assert sum(sizes) == layer.size
    assert max(sizes) == 1024 * 1024
    assert len(sizes) == -(-layer.size // (1024 * 1024))


def test_an_oci_layout_directory_reads_like_the_archive(built: Path, tmp_path: Path) -> None:
    extract_layout(built, tmp_path / "layout")

    assert OciArchive.open(tmp_path / "layout").image() == OciArchive.open(built).image()


def test_a_nested_index_with_platforms_and_attestations_picks_linux_amd64(
    built: Path, tmp_path: Path
) -> None:
    files = members(built)
    image = OciArchive.open(built).image()
    other = {"mediaType": image.media_type, "digest": image.config.digest, "size": image.config.size}
    entry = {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest)}
    nested = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {**other, "platform": {"os": "linux", "architecture": "arm64"}},
        {**entry, "platform": {"os": "linux", "architecture": "amd64"}},
        {**other, "platform": {"os": "unknown", "architecture": "unknown"}},
    ]}).encode()  # fmt: skip
    digest, name = blob(nested)
    files[name] = nested
    files["index.json"] = json.dumps(
        {"schemaVersion": 2, "manifests": [{"mediaType": OCI_INDEX, "digest": digest, "size": len(nested)}]}
    ).encode()

    archive = OciArchive.open(write_tar(tmp_path / "nested.tar", files))

    assert archive.image().digest == image.digest
    with pytest.raises(UsageError, match="exactly one image for linux/s390x: found linux/arm64, linux/amd64"):
        archive.image("linux/s390x")


def test_a_corrupt_blob_is_detected_when_read(built: Path, tmp_path: Path) -> None:
    files = members(built)
    image = OciArchive.open(built).image()
    name = "blobs/sha256/" + image.layers[0].digest[7:]
    files[name] = b"X" + files[name][1:]

    archive = OciArchive.open(write_tar(tmp_path / "corrupt.tar", files))

    with pytest.raises(UsageError, match="is corrupt: its content hashes to sha256:"):
        archive.read(image.layers[0].digest)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"oci-layout": b"{}"}, "is not an OCI image archive: it has no index.json"),
        ({"index.json": b"{not json"}, "index.json in .* is not JSON"),
        ({"index.json": b'{"manifests": [{"digest": "md5:00", "size": 1}]}'}, "bad descriptor in index"),
        ({"index.json": b'{"manifests": []}'}, "does not hold exactly one image"),
    ],
)
def test_broken_archives_are_usage_errors_that_say_why(
    tmp_path: Path, files: dict[str, bytes], message: str
) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        OciArchive.open(write_tar(tmp_path / "bad.tar", files)).image()

    assert "pipeline build" in caught.value.hint


def test_a_missing_blob_and_a_missing_file_are_reported(built: Path, tmp_path: Path) -> None:
    files = members(built)
    image = OciArchive.open(built).image()
    del files["blobs/sha256/" + image.digest[7:]]

    with pytest.raises(UsageError, match=f"it has no blobs/sha256/{image.digest[7:]}"):
        OciArchive.open(write_tar(tmp_path / "partial.tar", files)).image()
    with pytest.raises(NotFoundError, match="does not exist"):
        OciArchive.open(tmp_path / "nothing.oci.tar")
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(UsageError, match="is not an OCI image archive"):
        OciArchive.open(tmp_path / "plain.txt")


def manifest(**changes: Any) -> bytes:
    config = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "sha256:" + "a" * 64,
        "size": 2,
    }
    data: dict[str, Any] = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "config": config, "layers": []}  # fmt: skip
    data.update(changes)
    return json.dumps(data).encode()


def test_manifests_of_other_kinds_are_refused() -> None:
    assert OciImage.from_manifest(manifest()).layers == ()
    with pytest.raises(UsageError, match="unsupported manifest media type"):
        OciImage.from_manifest(manifest(mediaType="application/vnd.docker.distribution.manifest.v1+json"))
    with pytest.raises(UsageError, match="image manifest is not valid"):
        OciImage.from_manifest(b'{"layers": []}')
