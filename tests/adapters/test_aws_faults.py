"""Faults injected with botocore event hooks: retried, never applied twice, or failing fast.

A hook on ``before-send.<service>.<Operation>`` answers in place of moto (HTTP 500,
throttling, access denied) or raises ``ReadTimeoutError``; the ``CallLog`` counts the
requests that really reached moto. One case forwards the
request to moto *and then* times out, the worst case for a non-idempotent call: the
server applied it, the client never heard.
"""

from __future__ import annotations

import boto3
import pytest
import requests
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

from pipeline.aws.alb.router import AlbListenerRouter, service_routes
from pipeline.aws.ecs.compute import EcsCompute
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.core.errors import PlatformError, TransientPlatformError
from pipeline.core.model import Slot, Weights
from pipeline.core.state import Phase
from pipeline.testing import FakeClock, release
from tests.adapters.conftest import REGION
from tests.adapters.support.ecs import (
    CallLog,
    harness,
    register_targets,
)

pytest_plugins = ("tests.adapters.support.ecs_fixtures",)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: object) -> list[bytes]:
        return [self.body]


def answer(status: int, body: str, content_type: str = "text/xml") -> AWSResponse:
    return AWSResponse("http://fault.invalid", status, {"Content-Type": content_type}, _Raw(body.encode()))


def xml_error(code: str) -> str:
    error = f"<Type>Sender</Type><Code>{code}</Code><Message>{code} injected</Message>"
    return f"<ErrorResponse><Error>{error}</Error></ErrorResponse>"


class FirstAttemptsFail:
    """A before-send hook: the first ``times`` attempts get ``make()``'s answer (or raise it)."""

    def __init__(self, make: object, times: int = 1) -> None:
        self.make = make
        self.times = times
        self.attempts = 0
        self.injected = 0

    def __call__(self, request: object, **_: object) -> AWSResponse | None:
        self.attempts += 1
        if self.attempts > self.times:
            return None  # let it through to moto
        self.injected += 1
        outcome = self.make() if callable(self.make) else self.make
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, AWSResponse)
        request.answered_by_fault = True  # type: ignore[attr-defined]  # read by CallLog
        return outcome


def router_for(session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec) -> AlbListenerRouter:
    return AlbListenerRouter(service_routes(session, env, spec)[0])


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda: answer(500, xml_error("InternalFailure")), id="http-500"),
        pytest.param(lambda: answer(400, xml_error("Throttling")), id="throttling"),
        pytest.param(lambda: ReadTimeoutError(endpoint_url="http://moto"), id="read-timeout"),
    ],
)
def test_a_transient_fault_on_modify_rule_is_retried_and_applied_once(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, fault: object
) -> None:
    hook = FirstAttemptsFail(fault)
    session.on("before-send.elastic-load-balancing-v2.ModifyRule", hook)
    log = CallLog().attach(session)
    router = router_for(session, ready_env, spec)

    router.set_weights(Weights(60, 40))

    assert hook.attempts == 2  # the fault, then the retry
    assert log.calls["ModifyRule"] == 1  # one call to botocore
    assert log.reached["ModifyRule"] == 1  # one request reached moto
    assert router.get_weights() == Weights(60, 40)


def test_a_throttled_update_service_is_retried_once(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    throttled = answer(
        400, '{"__type": "ThrottlingException", "message": "Rate exceeded"}', "application/x-amz-json-1.1"
    )
    hook = FirstAttemptsFail(throttled)
    session.on("before-send.ecs.UpdateService", hook)
    log = CallLog().attach(session)
    live, test = service_routes(session, ready_env, spec)

    EcsCompute(session, ready_env, spec, groups=live.groups, test_route=test, clock=clock).provision(
        Slot.GREEN, release("1.0.0")
    )

    assert hook.attempts == 2 and log.reached["UpdateService"] == 1


def test_faults_beyond_the_retry_budget_are_transient_errors(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec
) -> None:
    hook = FirstAttemptsFail(lambda: answer(500, xml_error("InternalFailure")), times=10)
    session.on("before-send.elastic-load-balancing-v2.ModifyRule", hook)

    with pytest.raises(TransientPlatformError) as caught:
        router_for(session, ready_env, spec).set_weights(Weights(60, 40))

    assert hook.attempts == 2  # max_attempts of the session
    assert "AWS ModifyRule answered InternalFailure" in caught.value.message


def test_access_denied_fails_fast_with_a_clear_message(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    denied = answer(
        400,
        '{"__type": "AccessDeniedException", "message": "User: deployer is not authorized to perform: '
        'ecs:UpdateService"}',
        "application/x-amz-json-1.1",
    )
    hook = FirstAttemptsFail(denied, times=10)
    session.on("before-send.ecs.UpdateService", hook)
    live, test = service_routes(session, ready_env, spec)
    compute = EcsCompute(session, ready_env, spec, groups=live.groups, test_route=test, clock=clock)

    with pytest.raises(PlatformError) as caught:
        compute.provision(Slot.GREEN, release("1.0.0"))

    assert hook.attempts == 1  # not retried
    assert not isinstance(caught.value, TransientPlatformError)
    assert caught.value.message.startswith("could not update service orders-green to arn:aws:ecs:")
    assert (
        "AWS UpdateService answered AccessDeniedException: User: deployer is not authorized"
        in caught.value.message
    )
    assert "pipeline iam-policy" in caught.value.hint


def test_a_registration_whose_answer_was_lost_is_not_repeated(
    session: AwsSession, ready_env: AwsEnvironment, spec: EcsServiceSpec, clock: FakeClock
) -> None:
    """The server registers the revision, the client times out: the engine's retry of
    provision finds that revision instead of registering a second one."""
    reached: list[str] = []

    def applied_then_timeout(request: object, **_: object) -> None:
        if reached:
            return None
        req = request  # an AWSPreparedRequest: forward it to moto as it is, then "lose" the answer
        answer_ = requests.request(req.method, req.url, headers=dict(req.headers), data=req.body, timeout=10)  # type: ignore[attr-defined]
        reached.append(str(answer_.status_code))
        raise ReadTimeoutError(endpoint_url=req.url)  # type: ignore[attr-defined]

    session.on("before-send.ecs.RegisterTaskDefinition", applied_then_timeout)
    log = CallLog().attach(session)
    register_targets(session, spec, Slot.BLUE, spec.desired_count)
    h = harness(session, ready_env, spec, clock)

    state = h.deploy("1.0.0")

    assert state.phase is Phase.SUCCEEDED, state.reason
    assert reached == ["200"]  # the lost registration did reach moto and succeed
    assert log.calls["RegisterTaskDefinition"] == 1  # and was never sent again
    revisions = boto3.client("ecs", region_name=REGION).list_task_definitions(familyPrefix="orders")
    assert len(revisions["taskDefinitionArns"]) == 2  # the bootstrap placeholder and this release
    errors = [r.detail for r in h.store.history(state.ref) if r.action == "error"]
    assert len(errors) == 1 and "Provision failed (1/6)" in errors[0] and "did not answer" in errors[0]
