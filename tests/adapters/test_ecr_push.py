"""Pushing real OCI archives (built by buildah from ``FROM scratch``) to moto's ECR over HTTP.

Every ECR call the adapter makes is recorded with a botocore ``before-call`` hook, so the
tests assert what was uploaded, not only what ends up stored.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import moto
import pytest

from pipeline.aws.ecr.push import MiB, Repo, put_manifest
from pipeline.aws.ecr.registry import EcrRegistry
from pipeline.aws.session import AwsSession, SessionSettings
from pipeline.core.errors import NotFoundError, PlatformError
from pipeline.oci import OciArchive
from tests.support.images import buildah_or_skip, extract_layout, scratch_image

REGION = "eu-west-1"
TAG = "0123456789abcdef0123456789abcdef01234567"
OTHER_TAG = "89abcdef0123456789abcdef0123456789abcdef"
BIG = os.urandom(12 * MiB)  # one layer > 10 MiB: a multi-part upload


def require_moto_with_layer_uploads() -> None:
    """moto implements the ECR layer-upload API from 5.2.5 on; older versions answer 500."""
    version = tuple(int(part) for part in moto.__version__.split(".")[:3] if part.isdigit())
    if version < (5, 2, 5):
        pytest.fail(f"moto {moto.__version__} lacks ECR's layer-upload API: install 'moto[server]>=5.2.5'")


@dataclass
class Ecr:
    """A registry on moto plus the names of the ECR operations it called, in order."""

    registry: EcrRegistry
    session: AwsSession
    calls: list[str]

    def count(self) -> Counter[str]:
        counted = Counter(self.calls)
        self.calls.clear()
        return counted


def ecr_on_moto(region: str = REGION, role_arn: str = "", registry: str = "", **options: Any) -> Ecr:
    require_moto_with_layer_uploads()
    session = AwsSession(SessionSettings(region=region, role_arn=role_arn, max_attempts=1))
    calls: list[str] = []
    session.on("before-call.ecr", lambda model, **_: calls.append(model.name))
    return Ecr(EcrRegistry(session.client("ecr"), registry=registry, **options), session, calls)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three images: ``v1``; ``v2`` shares v1's big layer; ``v1b`` is v1 with other content."""
    folder = tmp_path_factory.mktemp("ecr-images")
    builder = buildah_or_skip(folder / "storage")
    return {
        "v1": scratch_image(builder, folder / "v1", {"big.bin": BIG, "app": b"v1\n"}),
        "v2": scratch_image(builder, folder / "v2", {"big.bin": BIG, "app": b"v2\n"}, commit=OTHER_TAG),
        "v1b": scratch_image(builder, folder / "v1b", {"big.bin": BIG[:-1], "app": b"v1\n"}),
    }


@pytest.fixture
def ecr(aws: str) -> Ecr:
    return ecr_on_moto()


def test_push_uploads_every_blob_in_parts_and_tags_the_sha256_of_the_manifest(
    ecr: Ecr, images: dict[str, Path]
) -> None:
    archive = OciArchive.open(images["v1"])
    image = archive.image()
    ecr.registry.ensure_repository("orders")
    ecr.count()

    release, report = ecr.registry.push("orders", archive, TAG)

    calls = ecr.count()
    big = max(image.layers, key=lambda layer: layer.size)
    expected_parts = sum(-(-blob.size // (10 * MiB)) for blob in image.blobs)
    assert big.size > 10 * MiB
    assert calls["InitiateLayerUpload"] == calls["CompleteLayerUpload"] == len(image.blobs) == 3
    assert calls["UploadLayerPart"] == report.parts == expected_parts == 4
    assert calls["PutImage"] == 1
    assert report.blobs_uploaded == 3 and report.bytes_uploaded == image.size
    stored = ecr.session.client("ecr").batch_get_image(repositoryName="orders", imageIds=[{"imageTag": TAG}])
    manifest = stored["images"][0]["imageManifest"].encode()
    assert manifest == image.manifest
    assert stored["images"][0]["imageId"]["imageDigest"] == "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert release.digest == image.digest
    assert release.image == f"123456789012.dkr.ecr.{REGION}.amazonaws.com/orders@{image.digest}"
    assert release.commit == release.version == TAG


def test_a_second_push_of_the_same_image_uploads_and_puts_nothing(ecr: Ecr, images: dict[str, Path]) -> None:
    archive = OciArchive.open(images["v1"])
    ecr.registry.ensure_repository("orders")
    first, _ = ecr.registry.push("orders", archive, TAG)
    ecr.count()

    again, report = ecr.registry.push("orders", archive, TAG)

    calls = ecr.count()
    assert again == first
    assert calls["InitiateLayerUpload"] == calls["UploadLayerPart"] == calls["PutImage"] == 0
    assert report.manifest_put is False and report.blobs_uploaded == 0


def test_an_image_sharing_a_layer_uploads_only_its_new_blobs(ecr: Ecr, images: dict[str, Path]) -> None:
    ecr.registry.ensure_repository("orders")
    ecr.registry.push("orders", OciArchive.open(images["v1"]), TAG)
    v2 = OciArchive.open(images["v2"])
    shared = set(OciArchive.open(images["v1"]).image().blobs) & set(v2.image().blobs)
    ecr.count()

    release, report = ecr.registry.push("orders", v2, OTHER_TAG)

    calls = ecr.count()
    assert [blob.size > 10 * MiB for blob in shared] == [True], "the big layer is the same in both"
    assert report.blobs_skipped == 1 and report.blobs_uploaded == 2
    assert calls["BatchCheckLayerAvailability"] == 1
    assert calls["InitiateLayerUpload"] == 2
    assert calls["UploadLayerPart"] == 2, "one part each for the config and the small layer"
    assert release.digest == v2.image().digest
    assert ecr.registry.resolve("orders", TAG).digest != release.digest


def test_the_same_tag_with_another_digest_is_refused_before_any_upload(
    ecr: Ecr, images: dict[str, Path]
) -> None:
    ecr.registry.ensure_repository("orders")
    first, _ = ecr.registry.push("orders", OciArchive.open(images["v1"]), TAG)
    other = OciArchive.open(images["v1b"])
    ecr.count()

    with pytest.raises(PlatformError) as caught:
        ecr.registry.push("orders", other, TAG)

    assert (
        f"orders:{TAG}: the tag already points to {first.digest} and tags are immutable"
        in caught.value.message
    )
    assert other.image().digest in caught.value.message
    assert "new commit" in caught.value.hint
    assert ecr.count()["InitiateLayerUpload"] == 0
    assert ecr.registry.resolve("orders", TAG).digest == first.digest


def test_put_image_conflicts_found_by_ecr_itself_are_sorted_into_success_and_refusal(
    ecr: Ecr, images: dict[str, Path]
) -> None:
    """The tag check and the put race with other pushers: ECR's own answer decides."""
    ecr.registry.ensure_repository("orders")
    ecr.registry.push("orders", OciArchive.open(images["v1"]), TAG)
    repo = Repo(ecr.session.client("ecr"), "orders")

    assert put_manifest(repo, OciArchive.open(images["v1"]).image(), TAG) is False
    with pytest.raises(PlatformError, match="tags are immutable"):
        put_manifest(repo, OciArchive.open(images["v1b"]).image(), TAG)


def test_a_corrupt_layer_is_never_completed_nor_put(
    ecr: Ecr, images: dict[str, Path], tmp_path: Path
) -> None:
    extract_layout(images["v1"], tmp_path / "layout")
    image = OciArchive.open(tmp_path / "layout").image()
    big = max(image.layers, key=lambda layer: layer.size)
    path = tmp_path / "layout/blobs/sha256" / big.digest[7:]
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    ecr.registry.ensure_repository("orders")
    ecr.count()

    with pytest.raises(PlatformError, match=f"blob {big.digest} is corrupt"):
        ecr.registry.push("orders", OciArchive.open(tmp_path / "layout"), TAG)

    calls = ecr.count()
    assert calls["CompleteLayerUpload"] <= 2, "only the two intact blobs may complete"
    assert calls["PutImage"] == 0
    with pytest.raises(NotFoundError, match="no image of orders"):
        ecr.registry.resolve("orders", TAG)


def test_part_size_outside_ecr_limits_is_refused(aws: str) -> None:
    with pytest.raises(PlatformError, match="5 MiB to 20 MiB"):
        ecr_on_moto(part_size=1 * MiB)


def test_a_smaller_part_size_sends_more_parts(aws: str, images: dict[str, Path]) -> None:
    ecr = ecr_on_moto(part_size=5 * MiB, concurrency=1)
    ecr.registry.ensure_repository("orders")
    archive = OciArchive.open(images["v1"])
    ecr.count()

    _, report = ecr.registry.push("orders", archive, TAG)

    big = max(archive.image().layers, key=lambda layer: layer.size)
    assert report.parts == ecr.count()["UploadLayerPart"] == -(-big.size // (5 * MiB)) + 2


def test_pushing_into_a_missing_repository_says_to_create_it(ecr: Ecr, images: dict[str, Path]) -> None:
    with pytest.raises(NotFoundError, match="ECR repository orders: it does not exist") as caught:
        ecr.registry.push("orders", OciArchive.open(images["v1"]), TAG)

    assert "ensure_repository" in caught.value.hint
    assert ecr.count()["InitiateLayerUpload"] == 0
