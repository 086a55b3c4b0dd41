"""Promotion into an environment whose registry is another one: the ECS compute copies the
release's digest into its own registry and runs it from there.

The source registry is in another region of moto (one moto account serves both; a
cross-account copy is the same calls with another ``registryId``). moto does not implement
``GetDownloadUrlForLayer``; real ECR answers it with a pre-signed URL of the layer
(https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetDownloadUrlForLayer.html),
which a botocore ``before-call`` hook models here with a ``file://`` URL of the blob.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from pipeline.aws.alb.router import service_routes
from pipeline.aws.ecr.mirror import ensure_image, parse_image
from pipeline.aws.ecr.registry import EcrRegistry
from pipeline.aws.ecs.compute import EcsCompute
from pipeline.aws.session import AwsSession, SessionSettings
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.core.errors import PlatformError
from pipeline.core.model import Release, Slot
from pipeline.oci import OciArchive
from pipeline.testing import FakeClock
from tests.adapters.conftest import REGION
from tests.adapters.support.ecs import ACCOUNT
from tests.support.images import buildah_or_skip, extract_layout, scratch_image

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)

SOURCE_REGION = "us-east-1"
SOURCE_REGISTRY = f"{ACCOUNT}.dkr.ecr.{SOURCE_REGION}.amazonaws.com"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An OCI archive of a small image, and its blobs unpacked as an OCI layout."""
    folder = tmp_path_factory.mktemp("promote")
    archive = scratch_image(
        buildah_or_skip(folder / "storage"), folder, {"app": b"v1\n", "data.bin": b"x" * 4096}, commit=COMMIT
    )
    extract_layout(archive, folder / "layout")
    return archive, folder / "layout"


@pytest.fixture
def pushed(aws: str, image: tuple[Path, Path]) -> Release:
    """The release as the source environment pushed it (its image names the source registry)."""
    session = AwsSession(SessionSettings(region=SOURCE_REGION, max_attempts=1))
    registry = EcrRegistry(session.client("ecr"), registry=SOURCE_REGISTRY)
    registry.ensure_repository("orders")
    release, _ = registry.push("orders", OciArchive.open(image[0]), COMMIT)
    return release


def serve_layers(session: AwsSession, layout: Path) -> None:
    """Answer ``GetDownloadUrlForLayer`` like ECR does: a URL the blob can be read from."""

    def download_url(model: Any, params: dict[str, Any], **_: Any) -> Any:
        if model.name != "GetDownloadUrlForLayer":
            return None
        digest = json.loads(params["body"])["layerDigest"]
        blob = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
        return AWSResponse("", 200, {}, None), {"downloadUrl": blob.as_uri(), "layerDigest": digest}

    session.boto.events.register("before-call.ecr", download_url)  # clients of other regions


def compute_for(
    session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> EcsCompute:
    live, test = service_routes(session, env, spec)
    return EcsCompute(session, env, spec, groups=live.groups, test_route=test, clock=clock)


def running_image(slot_service: str) -> str:
    ecs = boto3.client("ecs", region_name=REGION)
    arn = ecs.describe_services(cluster="shop", services=[slot_service])["services"][0]["taskDefinition"]
    definition = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return str(definition["containerDefinitions"][0]["image"])


def test_provision_copies_a_promoted_release_by_digest_into_the_environments_registry(
    session: AwsSession,
    ready_env: AwsEnvironment,
    spec: EcsServiceSpec,
    clock: FakeClock,
    pushed: Release,
    image: tuple[Path, Path],
) -> None:
    assert pushed.image == f"{SOURCE_REGISTRY}/orders@{pushed.digest}"
    serve_layers(session, image[1])

    compute_for(session, ready_env, spec, clock).provision(Slot.GREEN, pushed)

    assert running_image("orders-green") == f"{ready_env.ecr_registry}/orders@{pushed.digest}"
    ecr = boto3.client("ecr", region_name=REGION)
    [copied] = ecr.describe_images(repositoryName="orders", imageIds=[{"imageDigest": pushed.digest}])[
        "imageDetails"
    ]
    assert copied["imageDigest"] == pushed.digest and COMMIT in copied["imageTags"]


def test_provisioning_a_promoted_release_again_only_looks_its_digest_up(
    session: AwsSession,
    ready_env: AwsEnvironment,
    spec: EcsServiceSpec,
    clock: FakeClock,
    pushed: Release,
    image: tuple[Path, Path],
) -> None:
    serve_layers(session, image[1])
    compute_for(session, ready_env, spec, clock).provision(Slot.GREEN, pushed)
    calls: list[str] = []
    session.on("before-call.ecr", lambda model, **_: calls.append(model.name))

    compute_for(session, ready_env, spec, clock).provision(Slot.GREEN, pushed)  # e.g. a resumed deployment

    assert calls == ["DescribeImages"], "no copy: the environment's registry already holds the digest"


def test_a_release_already_in_the_environments_registry_needs_no_ecr_call(
    session: AwsSession, ready_env: AwsEnvironment
) -> None:
    digest = "sha256:" + "b" * 64
    here = Release("orders", "1.0.0", digest, COMMIT, f"{ready_env.ecr_registry}/orders@{digest}")
    calls: list[str] = []
    session.on("before-call.ecr", lambda model, **_: calls.append(model.name))

    assert ensure_image(session, ready_env.ecr_registry, "orders", here) == here.image
    assert calls == []


def test_a_digest_the_source_registry_does_not_have_stops_before_anything_is_deployed(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock, pushed: Release
) -> None:
    missing = Release(
        "orders", "9.9.9", "sha256:" + "c" * 64, COMMIT, f"{SOURCE_REGISTRY}/orders@sha256:{'c' * 64}"
    )
    updates: list[str] = []
    session.on("before-call.ecs.UpdateService", lambda **_: updates.append("UpdateService"))

    with pytest.raises(PlatformError) as caught:
        compute_for(session, ready_env, spec, clock).provision(Slot.GREEN, missing)

    assert (
        f"cannot copy {SOURCE_REGISTRY}/orders@{missing.digest} to {ready_env.ecr_registry}"
        in caught.value.message
    )
    assert "repository policy" in caught.value.hint
    assert updates == []


def test_image_references_split_into_registry_repository_digest_and_region() -> None:
    ref = parse_image(f"{SOURCE_REGISTRY}/team/orders@sha256:{'d' * 64}")

    assert ref is not None
    assert (ref.registry, ref.repository, ref.region) == (SOURCE_REGISTRY, "team/orders", SOURCE_REGION)
    assert parse_image("orders:latest") is None
    assert parse_image("") is None
