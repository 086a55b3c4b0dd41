"""``LambdaAliasRouter`` against moto: engine weights <-> alias routing weights, read back."""
# ruff: noqa: F401, F811 - the ``lambda_aws`` fixture is imported, then requested by name

from __future__ import annotations

import pytest

from pipeline.aws.lambda_.api import LambdaApi
from pipeline.aws.lambda_.router import LambdaAliasRouter
from pipeline.core.errors import PlatformError
from pipeline.core.model import Slot, Weights
from pipeline.testing import release
from tests.adapters.support.lambda_world import LambdaWorld, lambda_aws


def _two_versions(world: LambdaWorld) -> tuple[LambdaApi, LambdaAliasRouter]:
    spec = world.spec()
    world.bootstrap(spec)
    platform = world.platform(spec)
    platform.compute.provision(Slot.BLUE, release("v1"))
    world.write_code("{'statusCode': 200, 'body': 'v2'}")
    platform.compute.provision(Slot.GREEN, release("v2"))
    router = platform.router
    assert isinstance(router, LambdaAliasRouter)
    return router.api, router


def test_a_split_keeps_the_stable_version_primary_and_weights_the_new_one(lambda_aws: LambdaWorld) -> None:
    api, router = _two_versions(lambda_aws)
    router.set_weights(Weights(100, 0))

    router.set_weights(Weights(90, 10))

    live = api.alias("live")
    assert live is not None and live.version == "2" and live.weights == (("3", 0.1),)
    assert router.get_weights() == Weights(90, 10)


def test_finalize_and_rollback_leave_no_extra_weights(lambda_aws: LambdaWorld) -> None:
    api, router = _two_versions(lambda_aws)
    router.set_weights(Weights(100, 0))
    router.set_weights(Weights(50, 50))

    router.set_weights(Weights(0, 100))
    live = api.alias("live")
    assert live is not None and (live.version, live.weights) == ("3", ())
    assert router.get_weights() == Weights(0, 100)

    router.set_weights(Weights(100, 0))
    live = api.alias("live")
    assert live is not None and (live.version, live.weights) == ("2", ())
    assert router.get_weights() == Weights(100, 0)


def test_setting_the_same_weights_again_does_not_write_the_alias(lambda_aws: LambdaWorld) -> None:
    _, router = _two_versions(lambda_aws)
    router.set_weights(Weights(75, 25))
    lambda_aws.calls.clear()

    router.set_weights(Weights(75, 25))

    assert lambda_aws.calls.named("UpdateAlias") == []


def test_an_alias_on_a_version_outside_both_slots_reads_as_no_route(lambda_aws: LambdaWorld) -> None:
    _, router = _two_versions(lambda_aws)  # live is still on the bootstrap placeholder (version 1)
    assert router.get_weights() is None


def test_a_split_to_an_unprovisioned_slot_is_refused(lambda_aws: LambdaWorld) -> None:
    spec = lambda_aws.spec()
    lambda_aws.bootstrap(spec)
    platform = lambda_aws.platform(spec)
    platform.compute.provision(Slot.BLUE, release("v1"))
    api = LambdaApi(lambda_aws.session.client("lambda"), spec.function)
    lambda_aws.session.client("lambda").delete_alias(FunctionName=spec.function, Name="green")

    with pytest.raises(PlatformError, match="no version is provisioned in that slot"):
        LambdaAliasRouter(api).set_weights(Weights(90, 10))


def test_the_same_version_in_both_slots_reads_back_the_requested_split(lambda_aws: LambdaWorld) -> None:
    spec = lambda_aws.spec()
    lambda_aws.bootstrap(spec)
    platform = lambda_aws.platform(spec)
    platform.compute.provision(Slot.BLUE, release("v1"))
    platform.compute.provision(Slot.GREEN, release("v1-again"))  # same code: same version
    router = platform.router

    router.set_weights(Weights(80, 20))

    assert router.get_weights() == Weights(80, 20)
    live = LambdaApi(lambda_aws.session.client("lambda"), spec.function).alias("live")
    assert live is not None and live.version == "2" and live.weights == ()
