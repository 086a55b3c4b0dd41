"""Lambda deployments through the real engine, against moto's server over HTTP.

Bootstrap creates the function (placeholder = version 1); the first deployment publishes
version 2 and puts ``live`` on it; the deployment under test publishes version 3 into the
other slot. Metrics the data plane would produce are injected with ``put_metric_data`` for
``ExecutedVersion`` 2 (baseline) and 3 (the new version).
"""
# ruff: noqa: F401, F811 - the ``lambda_aws`` fixture is imported, then requested by name

from __future__ import annotations

from pipeline.aws.lambda_.api import LambdaApi
from pipeline.core.analysis import AnalysisSpec, Check
from pipeline.core.model import ServiceRef
from pipeline.core.plan import Strategy
from pipeline.core.state import Phase, Timeouts
from pipeline.core.steps import linear
from pipeline.operations import Context, deploy
from pipeline.testing import release
from tests.adapters.support.lambda_world import (
    LambdaWorld,
    canary_strategy,
    lambda_aws,
)

REF = ServiceRef("orders", "dev")


def _first_deploy(world: LambdaWorld) -> tuple[LambdaApi, Context]:
    spec = world.spec()
    world.bootstrap(spec)
    platform = world.platform(spec)
    ctx, _, _ = world.context(platform)
    first = deploy(ctx, REF, release("v1"), canary_strategy())
    assert first.phase is Phase.SUCCEEDED, first.reason
    api = LambdaApi(world.session.client("lambda"), spec.function)
    live = api.alias("live")
    assert live is not None and live.version == "2" and live.weights == ()
    world.write_code("{'statusCode': 200, 'body': 'v2'}")
    world.calls.clear()
    return api, ctx


def _weights_written(world: LambdaWorld) -> list[tuple[str, dict[str, float]]]:
    """(primary version, extra weights) of every UpdateAlias call on ``live``."""
    return [
        (p["FunctionVersion"], p["RoutingConfig"]["AdditionalVersionWeights"])
        for p in world.calls.named("UpdateAlias")
        if p["Name"] == "live"
    ]


def test_canary_promotes_a_good_version_to_the_live_alias(lambda_aws: LambdaWorld) -> None:
    api, ctx = _first_deploy(lambda_aws)
    lambda_aws.put_metrics("orders-dev", "3", invocations=50)
    lambda_aws.put_metrics("orders-dev", "2", invocations=200)

    final = deploy(ctx, REF, release("v2"), canary_strategy())

    assert final.phase is Phase.SUCCEEDED, final.reason
    live = api.alias("live")
    assert live is not None and live.version == "3" and live.weights == ()
    assert _weights_written(lambda_aws) == [("2", {"3": 0.1}), ("2", {"3": 0.5}), ("3", {})]
    assert [v.version for v in api.versions()] == ["1", "2", "3"]


def test_canary_rolls_back_a_version_whose_errors_exceed_the_limit(lambda_aws: LambdaWorld) -> None:
    api, ctx = _first_deploy(lambda_aws)
    lambda_aws.put_metrics("orders-dev", "3", invocations=50, errors=10)
    lambda_aws.put_metrics("orders-dev", "2", invocations=200)

    final = deploy(ctx, REF, release("v2"), canary_strategy())

    assert final.phase is Phase.ROLLED_BACK
    assert "error_rate 0.2 > 0.05" in final.reason
    live = api.alias("live")
    assert live is not None and live.version == "2" and live.weights == ()
    assert _weights_written(lambda_aws) == [("2", {"3": 0.1}), ("2", {})]


def test_linear_rolls_back_a_throttled_version(lambda_aws: LambdaWorld) -> None:
    api, ctx = _first_deploy(lambda_aws)
    lambda_aws.put_metrics("orders-dev", "3", invocations=40, throttles=20)
    strategy = Strategy(
        steps=linear(increment=25, interval_seconds=60),
        analysis=AnalysisSpec(checks=(Check("error_rate", 0.05),), min_requests=20, window_seconds=120),
        timeouts=Timeouts(ready=30, verify=10, poll=2),
    )

    final = deploy(ctx, REF, release("v2"), strategy)

    assert final.phase is Phase.ROLLED_BACK
    assert "error_rate 0.3333 > 0.05" in final.reason  # 20 throttles of 60 requests
    live = api.alias("live")
    assert live is not None and live.version == "2" and live.weights == ()
    assert _weights_written(lambda_aws)[0] == ("2", {"3": 0.25})


def test_linear_promotes_step_by_step(lambda_aws: LambdaWorld) -> None:
    api, ctx = _first_deploy(lambda_aws)
    lambda_aws.put_metrics("orders-dev", "3", invocations=40)
    strategy = Strategy(
        steps=linear(increment=50, interval_seconds=60),
        analysis=AnalysisSpec(checks=(Check("error_rate", 0.05),), min_requests=20, window_seconds=120),
        timeouts=Timeouts(ready=30, verify=10, poll=2),
    )

    final = deploy(ctx, REF, release("v2"), strategy)

    assert final.phase is Phase.SUCCEEDED, final.reason
    assert _weights_written(lambda_aws) == [("2", {"3": 0.5}), ("3", {})]
    live = api.alias("live")
    assert live is not None and live.version == "3" and live.weights == ()


def test_a_failing_smoke_invocation_rolls_back_before_any_weight_moves(lambda_aws: LambdaWorld) -> None:
    api, ctx = _first_deploy(lambda_aws)
    lambda_aws.queue_responses({"errorMessage": "KeyError: 'orders'", "errorType": "KeyError"})

    final = deploy(ctx, REF, release("v2"), canary_strategy())

    assert final.phase is Phase.ROLLED_BACK
    assert "smoke event 1/1 failed on version 3: KeyError" in final.reason
    updated = [p["Name"] for p in lambda_aws.calls.named("UpdateAlias")]
    assert updated == ["green"]  # provisioning the new slot; the live alias was never written
    invoked = [p.get("Qualifier") for p in lambda_aws.calls.named("Invoke")]
    assert invoked == ["3"]  # the version itself, once; no warm-up after the failure
    live = api.alias("live")
    assert live is not None and live.version == "2" and live.weights == ()
