"""Lambda safety: optimistic concurrency (RevisionId), updates in progress, concurrency
quotas, packages from the release's commit, size limits and S3 staging.

What moto cannot produce (an update in progress, a stale RevisionId, the account's
concurrency quota) is modelled with ``botocore.stub.Stubber`` fed answers shaped as the
Lambda API reference documents them (``tests/adapters/support/aws_responses.py``); the rest
runs against moto over HTTP and a real git repository.
"""
# ruff: noqa: F401, F811 - the ``lambda_aws`` fixture is imported, then requested by name

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from pipeline.aws.lambda_ import staging
from pipeline.aws.lambda_.api import Conflict, FunctionSettings, LambdaApi
from pipeline.aws.lambda_.compute import LambdaCompute, Readiness
from pipeline.aws.lambda_.concurrency import ConcurrencyApi
from pipeline.aws.lambda_.package import ZipPackage, package_commit
from pipeline.aws.lambda_.platform import packager
from pipeline.aws.lambda_.router import LambdaAliasRouter
from pipeline.aws.lambda_.slots import SlotVersions
from pipeline.aws.lambda_.staging import CodeBucket, bucket_name, upload_code
from pipeline.core.errors import PipelineError, PlatformError, TransientPlatformError
from pipeline.core.model import Slot, Weights
from pipeline.lambda_zip import DIRECT_UPLOAD_MAX, UNZIPPED_MAX, check_size, package_directory
from pipeline.local.registry import LocalRegistry
from pipeline.testing import FakeClock, release
from tests.adapters.conftest import REGION
from tests.adapters.support.aws_responses import (
    account_settings,
    lambda_configuration,
    revision_mismatch,
    unreserved_below_minimum,
    update_in_progress,
)
from tests.adapters.support.git_repo import commit_all, init, released
from tests.adapters.support.lambda_world import LambdaWorld, lambda_aws

FUNCTION = "orders-dev"
ARN = f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION}"
SETTINGS = FunctionSettings(
    handler="app.handler", runtime="python3.11", memory=128, timeout=10,
    role_arn="arn:aws:iam::123456789012:role/pipeline-dev-lambda",
)


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("lambda", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


# --- RevisionId and updates in progress (Stubber) ------------------------------------------


def test_publish_passes_the_revision_id_and_waits_out_an_update_in_progress(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stub = stubbed
    package = ZipPackage(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip: only its sha matters
    sha = package.code_sha256
    first, second = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    stub.add_response("list_versions_by_function", {"Versions": [lambda_configuration(FUNCTION)]},
                      {"FunctionName": FUNCTION})
    at_first = lambda_configuration(FUNCTION, CodeSha256=sha, RevisionId=first)
    stub.add_response("get_function_configuration", at_first, {"FunctionName": FUNCTION})
    publish = {"FunctionName": FUNCTION, "CodeSha256": sha, "Description": ANY}
    update_in_progress(stub, "publish_version", ARN, {**publish, "RevisionId": first})
    stub.add_response("get_function_configuration",
                      lambda_configuration(FUNCTION, CodeSha256=sha, LastUpdateStatus="InProgress"),
                      {"FunctionName": FUNCTION})
    updated = lambda_configuration(FUNCTION, CodeSha256=sha, RevisionId=second)
    stub.add_response("get_function_configuration", updated, {"FunctionName": FUNCTION})
    stub.add_response("publish_version", lambda_configuration(FUNCTION, "4", CodeSha256=sha),
                      {**publish, "RevisionId": second})
    clock = FakeClock()
    compute = LambdaCompute(LambdaApi(client, FUNCTION), ConcurrencyApi(client, FUNCTION), clock,
                            settings=SETTINGS, package_for=lambda r: package, poll=2.0)

    version = compute.version_for(release("v4"))

    assert version.version == "4"
    assert clock.slept == 2.0  # one poll while LastUpdateStatus was InProgress


def test_publish_gives_up_as_a_transient_conflict_when_the_function_stays_busy(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stub = stubbed
    api = LambdaApi(client, FUNCTION)
    publish = {"FunctionName": FUNCTION, "CodeSha256": "abc", "Description": "d", "RevisionId": "r1"}
    update_in_progress(stub, "publish_version", ARN, publish)

    with pytest.raises(Conflict) as caught:
        api.publish("abc", "d", "r1")

    assert isinstance(caught.value, TransientPlatformError)  # the engine retries the step
    assert "ResourceConflictException" in caught.value.message
    assert "update is in progress" in caught.value.message


def test_code_and_settings_are_written_only_over_the_revision_read(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    api = LambdaApi(client, FUNCTION)
    package = ZipPackage(b"PK\x05\x06" + b"\x00" * 18)
    revision_mismatch(stub, "update_function_code",
                      {"FunctionName": FUNCTION, "ZipFile": package.data, "RevisionId": "r1"})
    update_in_progress(stub, "update_function_configuration", ARN,
                       {"FunctionName": FUNCTION, **SETTINGS.to_api(), "RevisionId": "r2"})

    with pytest.raises(Conflict) as code:
        api.update_code(package, revision_id="r1")
    with pytest.raises(Conflict) as settings:
        api.update_settings(SETTINGS, "r2")

    assert code.value.code == "PreconditionFailedException"
    assert settings.value.code == "ResourceConflictException"


def test_weights_are_written_with_the_alias_revision_read_and_a_concurrent_change_is_not_overwritten(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stub = stubbed

    def alias(name: str, version: str, revision: str, weights: dict[str, float] | None = None) -> Any:
        return {"AliasArn": f"{ARN}:{name}", "Name": name, "FunctionVersion": version, "Description": "",
                "RoutingConfig": {"AdditionalVersionWeights": weights or {}}, "RevisionId": revision}

    stub.add_response("get_alias", alias("blue", "3", "b"), {"FunctionName": FUNCTION, "Name": "blue"})
    stub.add_response("get_alias", alias("green", "4", "g"), {"FunctionName": FUNCTION, "Name": "green"})
    live = {"FunctionName": FUNCTION, "Name": "live"}
    stub.add_response("get_alias", alias("live", "3", "rev-live-1"), live)
    write = {"FunctionName": FUNCTION, "Name": "live", "FunctionVersion": "3", "Description": ANY,
             "RoutingConfig": {"AdditionalVersionWeights": {"4": 0.1}}}
    stub.add_response("update_alias", alias("live", "3", "rev-live-2", {"4": 0.1}),
                      {**write, "RevisionId": "rev-live-1"})
    stub.add_response("get_alias", alias("live", "3", "rev-live-9"), live)  # changed by someone else
    half = {**write, "RoutingConfig": {"AdditionalVersionWeights": {"4": 0.5}}, "RevisionId": "rev-live-9"}
    revision_mismatch(stub, "update_alias", half)
    api = LambdaApi(client, FUNCTION)
    router = LambdaAliasRouter(api, "live", SlotVersions(api))

    router.set_weights(Weights.split(Slot.GREEN, 10))
    with pytest.raises(Conflict) as caught:
        router.set_weights(Weights.split(Slot.GREEN, 50))

    assert caught.value.code == "PreconditionFailedException"


# --- reserved and provisioned concurrency ------------------------------------------------


def test_reserving_refuses_before_writing_when_the_account_would_keep_under_100_unreserved(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stub = stubbed
    stub.add_response("get_function_concurrency", {}, {"FunctionName": FUNCTION})
    stub.add_response("get_account_settings", account_settings(limit=1000, unreserved=150), {})

    with pytest.raises(PlatformError) as caught:
        ConcurrencyApi(client, FUNCTION).reserve(80)  # no PutFunctionConcurrency is stubbed

    assert "the account would keep 70 unreserved concurrent executions" in caught.value.message
    assert "(it has 150 of 1000; AWS keeps at least 100)" in caught.value.message
    assert "lambda.reserved_concurrency" in caught.value.hint


def test_a_small_accounts_whole_limit_is_its_minimum() -> None:
    client = boto3.client("lambda", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as stub:
        stub.add_response("get_function_concurrency", {}, {"FunctionName": FUNCTION})
        stub.add_response("get_account_settings", account_settings(limit=10, unreserved=10), {})
        with pytest.raises(PlatformError) as caught:
            ConcurrencyApi(client, FUNCTION).reserve(1)
    assert "AWS keeps at least 10" in caught.value.message


def test_the_quota_error_aws_answers_is_a_clear_platform_error(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    reserved = {"ReservedConcurrentExecutions": 5}
    stub.add_response("get_function_concurrency", reserved, {"FunctionName": FUNCTION})
    stub.add_response("get_account_settings", account_settings(limit=1000, unreserved=900), {})
    unreserved_below_minimum(stub, FUNCTION, 50)  # other reservations landed in between

    with pytest.raises(PlatformError) as caught:
        ConcurrencyApi(client, FUNCTION).reserve(50)

    assert "AWS refused it" in caught.value.message and "minimum value of [100]" in caught.value.message
    assert "quota" in caught.value.hint


def test_provisioned_concurrency_is_budgeted_for_two_versions(stubbed: tuple[Any, Stubber]) -> None:
    client, stub = stubbed
    concurrency = ConcurrencyApi(client, FUNCTION)

    assert concurrency.provision_budget(10, reserved=20) is None
    with pytest.raises(PlatformError) as caught:
        concurrency.require_budget(15, reserved=20)
    assert "two versions × 15 provisioned = 30 exceeds the reserved concurrency 20" in caught.value.message

    stub.add_response("get_account_settings", account_settings(limit=1000, unreserved=140), {})
    why = concurrency.provision_budget(50, reserved=None)
    assert why is not None and "leave the account 90 unreserved" in why


def test_bootstrap_applies_the_reservation_and_a_deployment_only_warns_about_a_difference(
    lambda_aws: LambdaWorld,
) -> None:
    spec = lambda_aws.spec(readiness=Readiness(warm_invocations=1, reserved_concurrency=5))
    lambda_aws.bootstrap(spec)
    client = lambda_aws.session.client("lambda")
    assert client.get_function_concurrency(FunctionName=spec.function)["ReservedConcurrentExecutions"] == 5

    changed = lambda_aws.spec(readiness=Readiness(warm_invocations=1, reserved_concurrency=7))
    platform = lambda_aws.platform(changed)
    lambda_aws.calls.clear()
    platform.compute.provision(Slot.GREEN, release("v1"))

    assert lambda_aws.calls.named("PutFunctionConcurrency") == []  # never during a deployment
    assert client.get_function_concurrency(FunctionName=spec.function)["ReservedConcurrentExecutions"] == 5
    assert isinstance(platform.compute, LambdaCompute)
    assert any("lambda.reserved_concurrency says 7: `pipeline bootstrap` applies it" in w
               for w in platform.compute.warnings)


# --- packages from the release's commit ---------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "services" / "orders").mkdir(parents=True)
    (root / "services" / "orders" / "app.py").write_text("def handler(event, context):\n    return 'v1'\n")
    (root / "services" / "orders" / "run.sh").write_text("#!/bin/sh\n")
    (root / "services" / "orders" / "run.sh").chmod(0o755)
    init(root)
    return root


def _entries(package: ZipPackage) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(package.data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_zip_is_packaged_from_the_commit_and_a_dirty_working_tree_does_not_leak(repo: Path) -> None:
    source = repo / "services" / "orders"
    v1 = commit_all(repo, "v1")
    (source / "app.py").write_text("def handler(event, context):\n    return 'uncommitted'\n")
    (source / "secrets.env").write_text("TOKEN=do-not-ship\n")

    package = package_commit(source, v1)

    assert _entries(package) == {
        "app.py": b"def handler(event, context):\n    return 'v1'\n",
        "run.sh": b"#!/bin/sh\n",
    }
    with zipfile.ZipFile(io.BytesIO(package.data)) as archive:
        assert archive.getinfo("run.sh").external_attr >> 16 == 0o100755
    (source / "app.py").write_text("def handler(event, context):\n    return 'v1'\n")
    (source / "secrets.env").unlink()
    assert package_commit(source, v1).data == package.data  # the same commit, the same bytes


def test_aws_and_the_local_platform_package_the_same_bytes_from_a_commit(repo: Path, tmp_path: Path) -> None:
    source = repo / "services" / "orders"
    commit_all(repo, "v1")
    (source / "app.py").write_text("dirty\n")  # neither platform may see it
    local = LocalRegistry(repo, tmp_path / "state")
    snapshot = local.resolve("orders")

    on_local = package_directory(local.snapshot_dir(snapshot) / "services" / "orders")

    assert package_commit(source, snapshot.commit).data == on_local


def test_the_platform_packager_builds_each_release_from_its_own_commit(
    repo: Path, lambda_aws: LambdaWorld
) -> None:
    source = repo / "services" / "orders"
    v1 = commit_all(repo, "v1")
    (source / "app.py").write_text("def handler(event, context):\n    return 'v2'\n")
    v2 = commit_all(repo, "v2")
    build = packager(lambda_aws.spec(source=source))

    old, new = build(released("v1", "orders", v1)), build(released("v2", "orders", v2))

    assert isinstance(old, ZipPackage) and isinstance(new, ZipPackage)
    assert b"'v1'" in _entries(old)["app.py"] and b"'v2'" in _entries(new)["app.py"]


def test_a_release_whose_commit_is_unknown_or_missing_is_refused(repo: Path) -> None:
    source = repo / "services" / "orders"
    commit_all(repo, "v1")

    with pytest.raises(PipelineError) as unknown:
        package_commit(source, "0123456789abcdef0123456789abcdef01234567")
    assert "git archive" in unknown.value.message and "fetch-depth: 0" in unknown.value.hint
    with pytest.raises(PipelineError) as empty:
        package_commit(source, "")
    assert "the release names no commit" in empty.value.message


# --- size limits and S3 staging -----------------------------------------------------------


def _stored_zip(size: int) -> bytes:
    """A zip holding ``size`` random bytes, uncompressed (so zipped ≈ unzipped)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("blob.bin", os.urandom(size))
    return buffer.getvalue()


def _deflated_zeros(size: int) -> bytes:
    """A small zip that unzips to ``size`` bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("zeros.bin", "w") as out:
        chunk = bytes(1024 * 1024)
        for _ in range(size // len(chunk)):
            out.write(chunk)
    return buffer.getvalue()


def test_a_zip_over_50_mb_needs_staging_and_one_over_250_mb_unzipped_is_refused() -> None:
    big = _stored_zip(DIRECT_UPLOAD_MAX + 1024)
    with pytest.raises(PipelineError) as direct:
        check_size(big, what="the package of orders-dev", staged=False)
    assert "zipped: a direct upload allows 50 MiB" in direct.value.message
    check_size(big, what="the package of orders-dev", staged=True)  # through S3 it fits

    huge = _deflated_zeros(UNZIPPED_MAX + 1024 * 1024)
    assert len(huge) < DIRECT_UPLOAD_MAX
    with pytest.raises(PipelineError) as unzipped:
        check_size(huge, what="the package of orders-dev", staged=True)
    assert "251.0 MiB unzipped: Lambda allows 250 MiB" in unzipped.value.message
    assert "container image" in unzipped.value.hint


def test_a_package_over_the_direct_limit_is_uploaded_through_the_bootstrap_bucket(
    lambda_aws: LambdaWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = lambda_aws.spec()
    lambda_aws.bootstrap(spec)  # creates the function and the staging bucket
    s3 = lambda_aws.session.client("s3")
    bucket = CodeBucket(s3, bucket_name(spec.account, spec.region), spec.region)
    assert bucket.exists()
    # A 50 MB upload is slow against the test endpoint: lower the threshold the choice uses.
    monkeypatch.setattr(staging, "DIRECT_UPLOAD_MAX", 64)
    lambda_aws.write_code("{'statusCode': 200, 'body': 'staged'}")
    package = ZipPackage(_stored_zip(4096))

    latest = upload_code(LambdaApi(lambda_aws.session.client("lambda"), spec.function), package, bucket)

    (call,) = lambda_aws.calls.named("UpdateFunctionCode")
    assert "ZipFile" not in call
    assert (call["S3Bucket"], call["S3Key"]) == (bucket.name, f"{spec.function}/{package.sha256_hex}.zip")
    assert s3.get_object(Bucket=bucket.name, Key=call["S3Key"])["Body"].read() == package.data
    assert latest.code_sha256 == package.code_sha256
