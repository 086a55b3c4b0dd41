"""``LambdaCompute`` against moto: versions, slot aliases, pre-traffic checks, concurrency."""
# ruff: noqa: F401, F811 - the ``lambda_aws`` fixture is imported, then requested by name

from __future__ import annotations

import base64
import hashlib

from pipeline.aws.lambda_.api import LambdaApi
from pipeline.aws.lambda_.compute import LambdaCompute, Readiness
from pipeline.aws.lambda_.concurrency import ConcurrencyApi
from pipeline.aws.lambda_.package import ZipPackage, package_function
from pipeline.core.model import Slot
from pipeline.testing import release
from tests.adapters.support.lambda_world import SMOKE, LambdaWorld, lambda_aws


def _compute(world: LambdaWorld, **readiness: object) -> LambdaCompute:
    spec = world.spec(readiness=Readiness(**{"smoke_events": (SMOKE,), "warm_invocations": 2, **readiness}))
    world.bootstrap(spec)
    compute = world.platform(spec).compute
    assert isinstance(compute, LambdaCompute)
    return compute


def test_an_unchanged_package_published_twice_is_one_version(lambda_aws: LambdaWorld) -> None:
    compute = _compute(lambda_aws)
    lambda_aws.calls.clear()

    compute.provision(Slot.BLUE, release("v1"))
    compute.provision(Slot.GREEN, release("v1-rebuilt"))  # another release, same code and settings

    api = compute.api
    assert [v.version for v in api.versions()] == ["1", "2"]  # placeholder + one
    assert len(lambda_aws.calls.named("PublishVersion")) == 1
    assert len(lambda_aws.calls.named("UpdateFunctionCode")) == 1
    blue, green = api.alias("blue"), api.alias("green")
    assert blue is not None and green is not None and blue.version == green.version == "2"


def test_the_published_code_sha256_is_the_zip_sha256(lambda_aws: LambdaWorld) -> None:
    compute = _compute(lambda_aws)

    compute.provision(Slot.BLUE, release("v1"))

    expected = package_function(lambda_aws.source)
    assert isinstance(expected, ZipPackage)
    version = compute.api.version("2")
    assert version.code_sha256 == expected.code_sha256
    assert expected.code_sha256 == base64.b64encode(hashlib.sha256(expected.data).digest()).decode()
    assert "sha256:" + hashlib.sha256(b"orders:v1").hexdigest() in version.description


def test_changed_code_or_settings_publish_a_new_version(lambda_aws: LambdaWorld) -> None:
    compute = _compute(lambda_aws)
    compute.provision(Slot.BLUE, release("v1"))

    lambda_aws.write_code("{'statusCode': 200, 'body': 'v2'}")
    compute.provision(Slot.GREEN, release("v2"))

    assert [v.version for v in compute.api.versions()] == ["1", "2", "3"]
    assert compute.api.version("3").settings_key == compute.api.version("2").settings_key


def test_redeploying_an_old_release_reuses_its_version_without_packaging(lambda_aws: LambdaWorld) -> None:
    compute = _compute(lambda_aws)
    compute.provision(Slot.BLUE, release("v1"))
    lambda_aws.write_code("{'statusCode': 200, 'body': 'v2'}")
    compute.provision(Slot.GREEN, release("v2"))
    lambda_aws.calls.clear()

    compute.provision(Slot.GREEN, release("v1"))  # a rollback to v1: the source now holds v2

    green = compute.api.alias("green")
    assert green is not None and green.version == "2"
    assert lambda_aws.calls.named("UpdateFunctionCode") == []
    assert lambda_aws.calls.named("PublishVersion") == []


def test_ready_only_once_the_slot_runs_this_release_and_smoke_passed(lambda_aws: LambdaWorld) -> None:
    compute = _compute(lambda_aws)
    before = compute.health(Slot.BLUE, release("v1"))
    assert not before.ready and not before.revision_matches

    compute.provision(Slot.BLUE, release("v1"))
    health = compute.health(Slot.BLUE, release("v1"))

    assert health.ready, health.detail
    assert "1 smoke event(s) passed" in health.detail and "warmed 2/2" in health.detail
    assert [p["Qualifier"] for p in lambda_aws.calls.named("Invoke")] == ["2", "2", "2"]
    assert not compute.health(Slot.BLUE, release("v2")).revision_matches


def test_a_failed_smoke_test_stays_failed_for_that_version(lambda_aws: LambdaWorld) -> None:
    compute = _compute(lambda_aws)
    compute.provision(Slot.GREEN, release("v1"))
    lambda_aws.queue_responses({"statusCode": 502, "body": "upstream down"})

    first = compute.health(Slot.GREEN, release("v1"))
    second = compute.health(Slot.GREEN, release("v1"))  # the queue is empty now: would pass

    assert not first.ready and not second.ready
    assert "smoke event 1/1 failed on version 2: HTTP 502: upstream down" in second.detail
    assert len(lambda_aws.calls.named("Invoke")) == 1


def test_provisioned_concurrency_unavailable_is_a_warning_not_a_crash(lambda_aws: LambdaWorld) -> None:
    compute = _compute(lambda_aws, provisioned_concurrency=3, reserved_concurrency=10)

    compute.provision(Slot.BLUE, release("v1"))
    health = compute.health(Slot.BLUE, release("v1"))

    assert health.ready, health.detail
    assert health.desired == 3
    assert "provisioned concurrency unavailable" in health.detail and "warmed 3/3" in health.detail
    assert any("provisioned concurrency unavailable" in w for w in compute.warnings)
    asked = lambda_aws.calls.named("GetProvisionedConcurrencyConfig")
    assert asked and {p["Qualifier"] for p in asked} == {"2"}  # the version, never an alias
    concurrency = ConcurrencyApi(lambda_aws.session.client("lambda"), "orders-dev")
    assert concurrency.reserved() == 10


def test_throttle_guard_fails_a_version_when_reserved_concurrency_is_too_low(lambda_aws: LambdaWorld) -> None:
    compute = _compute(lambda_aws, reserved_concurrency=5, expected_peak_rps=100.0, throttle_guard="fail")
    lambda_aws.put_metrics("orders-dev", "1", invocations=100, duration_ms=200.0, minutes=1, aggregate=True)
    lambda_aws.clock.advance(120)

    compute.provision(Slot.BLUE, release("v1"))
    health = compute.health(Slot.BLUE, release("v1"))

    assert not health.ready
    assert "needs 20 concurrent executions, but reserved concurrency is 5" in health.detail


def test_throttle_guard_in_warn_mode_only_warns(lambda_aws: LambdaWorld) -> None:
    compute = _compute(lambda_aws, reserved_concurrency=5, expected_peak_rps=100.0, throttle_guard="warn")
    lambda_aws.put_metrics("orders-dev", "1", invocations=100, duration_ms=200.0, minutes=1, aggregate=True)
    lambda_aws.clock.advance(120)

    compute.provision(Slot.BLUE, release("v1"))
    health = compute.health(Slot.BLUE, release("v1"))

    assert health.ready, health.detail
    assert "throttle risk" in health.detail
    assert compute.warnings and "reserved concurrency is 5" in compute.warnings[0]


def test_scale_down_releases_provisioned_concurrency_and_is_idempotent(lambda_aws: LambdaWorld) -> None:
    compute = _compute(lambda_aws, provisioned_concurrency=2)
    compute.provision(Slot.BLUE, release("v1"))
    lambda_aws.calls.clear()

    compute.scale_down(Slot.BLUE)
    compute.scale_down(Slot.BLUE)

    deletes = lambda_aws.calls.named("DeleteProvisionedConcurrencyConfig")
    assert [p["Qualifier"] for p in deletes] == ["2", "2"]


def test_the_test_route_is_the_slot_alias(lambda_aws: LambdaWorld) -> None:
    compute = _compute(lambda_aws)
    assert compute.endpoint(Slot.GREEN) == "lambda://orders-dev:green"


def test_wait_updated_polls_with_the_injected_clock(lambda_aws: LambdaWorld) -> None:
    compute = _compute(lambda_aws)
    latest = compute.wait_updated()
    assert latest.version == "$LATEST" and latest.state == "Active"
    assert lambda_aws.clock.slept == 0.0
    assert isinstance(compute.api, LambdaApi)
