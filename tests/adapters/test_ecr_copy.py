"""Promotion copies: the same digest into another account's (or region's) registry.

The target account is reached the way CI reaches production: through STS AssumeRole
(moto maps the assumed role's credentials to its account).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.errors import PlatformError
from pipeline.oci import OciArchive
from tests.adapters.test_ecr_push import BIG, REGION, TAG, Ecr, ecr_on_moto
from tests.support.images import buildah_or_skip, scratch_image

PROD = "222222222222"
PROD_ROLE = f"arn:aws:iam::{PROD}:role/pipeline-promote"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ecr-copy")
    return scratch_image(buildah_or_skip(folder / "storage"), folder, {"big.bin": BIG, "app": b"v1\n"})


@pytest.fixture
def source(aws: str, archive: Path) -> Ecr:
    ecr = ecr_on_moto()
    ecr.registry.ensure_repository("orders")
    ecr.registry.push("orders", OciArchive.open(archive), TAG)
    ecr.count()
    return ecr


def test_copy_puts_the_same_digest_under_the_same_commit_tag_in_another_account(
    source: Ecr, archive: Path
) -> None:
    prod = ecr_on_moto(role_arn=PROD_ROLE, registry=f"{PROD}.dkr.ecr.{REGION}.amazonaws.com")
    digest = OciArchive.open(archive).image().digest

    release, report = source.registry.copy_image(
        "orders", digest, prod.registry, blobs=OciArchive.open(archive)
    )

    assert release.digest == digest
    assert release.image == f"{PROD}.dkr.ecr.{REGION}.amazonaws.com/orders@{digest}"
    assert release.commit == TAG
    assert report.blobs_uploaded == 3 and report.manifest_put
    assert prod.registry.resolve("orders", TAG) == release
    assert source.count()["BatchGetImage"] == 1, "the manifest is read from the source registry"
    repo = prod.session.client("ecr").describe_repositories(repositoryNames=["orders"])["repositories"][0]
    assert repo["registryId"] == PROD and repo["imageTagMutability"] == "IMMUTABLE"


def test_copying_again_is_a_no_op(source: Ecr, archive: Path) -> None:
    other_region = ecr_on_moto(region="us-east-1")
    digest = OciArchive.open(archive).image().digest
    first, _ = source.registry.copy_image(
        "orders", digest, other_region.registry, blobs=OciArchive.open(archive)
    )
    other_region.count()

    again, report = source.registry.copy_image("orders", digest, other_region.registry)

    calls = other_region.count()
    assert again == first
    assert first.image.startswith("123456789012.dkr.ecr.us-east-1.amazonaws.com/orders@")
    assert report.blobs_uploaded == 0 and not report.manifest_put
    assert calls["InitiateLayerUpload"] == calls["PutImage"] == 0


def test_copy_without_local_blobs_needs_layer_downloads_which_moto_lacks(source: Ecr, archive: Path) -> None:
    """Real ECR serves GetDownloadUrlForLayer; moto answers 500, so the error must say what to do."""
    prod = ecr_on_moto(role_arn=PROD_ROLE, registry=f"{PROD}.dkr.ecr.{REGION}.amazonaws.com")
    digest = OciArchive.open(archive).image().digest

    with pytest.raises(PlatformError) as caught:
        source.registry.copy_image("orders", digest, prod.registry)

    assert "cannot read blob sha256:" in caught.value.message
    assert "from ECR repository orders" in caught.value.message
    assert "--archive" in caught.value.hint
    assert "GetDownloadUrlForLayer" in source.calls
    assert prod.count()["PutImage"] == 0, "no manifest without its blobs"
