"""ECR repositories (idempotent, converged settings) and resolving references to releases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.aws.ecr.registry import IAM_ACTIONS, keep_last_policy
from pipeline.core.errors import NotFoundError, UsageError
from pipeline.core.ports import ImageRegistry
from pipeline.oci import OciArchive
from tests.adapters.test_ecr_push import REGION, TAG, Ecr, ecr_on_moto
from tests.support.images import buildah_or_skip, scratch_image


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ecr-registry")
    return scratch_image(buildah_or_skip(folder / "storage"), folder, {"app": b"orders v1\n"})


@pytest.fixture
def ecr(aws: str) -> Ecr:
    return ecr_on_moto(head=lambda: TAG)


def settings(ecr: Ecr, name: str) -> tuple[str, bool, dict[str, object]]:
    client = ecr.session.client("ecr")
    repo = client.describe_repositories(repositoryNames=[name])["repositories"][0]
    policy = json.loads(client.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
    return repo["imageTagMutability"], repo["imageScanningConfiguration"]["scanOnPush"], policy


def test_ensure_repository_creates_an_immutable_scanned_repository_keeping_50_images(ecr: Ecr) -> None:
    created = ecr.registry.ensure_repository("orders")

    assert created.uri == f"123456789012.dkr.ecr.{REGION}.amazonaws.com/orders"
    assert created.registry_id == "123456789012"
    mutability, scan, policy = settings(ecr, "orders")
    assert (mutability, scan) == ("IMMUTABLE", True)
    (rule,) = policy["rules"]  # type: ignore[misc]
    assert rule["selection"]["countNumber"] == 50
    assert rule["action"] == {"type": "expire"}


def test_ensure_repository_is_idempotent_and_writes_nothing_the_second_time(ecr: Ecr) -> None:
    first = ecr.registry.ensure_repository("orders")
    ecr.count()

    again = ecr.registry.ensure_repository("orders")

    calls = ecr.count()
    assert again == first
    assert calls["PutLifecyclePolicy"] == calls["PutImageTagMutability"] == 0
    assert calls["PutImageScanningConfiguration"] == 0


def test_ensure_repository_converges_a_repository_made_by_hand(aws: str) -> None:
    ecr = ecr_on_moto(lifecycle_policy=keep_last_policy(10))
    client = ecr.session.client("ecr")
    client.create_repository(repositoryName="orders", imageTagMutability="MUTABLE")
    client.put_lifecycle_policy(repositoryName="orders", lifecyclePolicyText=keep_last_policy(500))

    ecr.registry.ensure_repository("orders")

    mutability, scan, policy = settings(ecr, "orders")
    assert (mutability, scan) == ("IMMUTABLE", True)
    assert policy["rules"][0]["selection"]["countNumber"] == 10  # type: ignore[index]


def test_resolve_turns_tags_commits_digests_and_head_into_one_release(ecr: Ecr, archive: Path) -> None:
    oci = OciArchive.open(archive)
    digest = oci.image().digest
    ecr.registry.ensure_repository("orders")
    pushed, _ = ecr.registry.push("orders", oci, TAG)
    registry: ImageRegistry = ecr.registry  # the port the engine uses

    by_tag = registry.resolve("orders", TAG)

    assert by_tag == pushed
    assert by_tag.image == f"123456789012.dkr.ecr.{REGION}.amazonaws.com/orders@{digest}"
    for reference in (TAG[:7], TAG[:12], digest, by_tag.image, "HEAD"):
        assert registry.resolve("orders", reference) == by_tag, reference


def test_resolve_reports_what_is_missing(ecr: Ecr, archive: Path) -> None:
    with pytest.raises(NotFoundError, match="ECR repository orders does not exist") as caught:
        ecr.registry.resolve("orders", TAG)
    assert "pipeline push orders" in caught.value.hint

    ecr.registry.ensure_repository("orders")
    ecr.registry.push("orders", OciArchive.open(archive), TAG)
    with pytest.raises(NotFoundError, match="no image of orders matches 'fedcba9'"):
        ecr.registry.resolve("orders", "fedcba9")
    with pytest.raises(NotFoundError):
        ecr.registry.resolve("orders", "sha256:" + "0" * 64)


def test_an_ambiguous_commit_prefix_asks_for_more_digits(ecr: Ecr, tmp_path: Path) -> None:
    builder = buildah_or_skip(tmp_path / "storage")
    ecr.registry.ensure_repository("orders")
    for n, commit in enumerate(("abcdef1" + "1" * 33, "abcdef1" + "2" * 33)):
        built = scratch_image(builder, tmp_path / str(n), {"app": f"{n}\n".encode()}, commit=commit)
        ecr.registry.push("orders", OciArchive.open(built), commit)

    with pytest.raises(UsageError, match="'abcdef1' matches 2 images of orders"):
        ecr.registry.resolve("orders", "abcdef1")
    assert ecr.registry.resolve("orders", "abcdef12").commit == "abcdef1" + "2" * 33


def test_iam_actions_cover_every_ecr_operation_the_adapter_called(ecr: Ecr, archive: Path) -> None:
    ecr.registry.ensure_repository("orders")
    ecr.registry.ensure_repository("orders")
    ecr.registry.push("orders", OciArchive.open(archive), TAG)
    ecr.registry.resolve("orders", TAG[:8])

    called = {f"ecr:{name}" for name in ecr.calls}

    assert called <= IAM_ACTIONS
    assert len(called) >= 10
