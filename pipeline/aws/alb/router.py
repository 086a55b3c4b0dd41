"""``AlbListenerRouter``: the TrafficRouter of an ECS service behind an ALB.

The service's path-based rule on the environment's listener forwards to the blue and green
target groups with weights. ``set_weights`` reads the rule and modifies it only if the split
differs; ``get_weights`` reads the rule back from ``DescribeRules``. The engine verifies
after every change, and only scales a slot down after verification.

What the read-back proves: the ALB's control plane stored the weights. It does not prove
that every load balancer node applies them yet (``DescribeRules`` has no such answer), so
before scaling a slot down the engine holds ``WEIGHT_SETTLE_SECONDS`` after verification;
then ECS deregisters the slot's targets and drains them for the deregistration delay
before it stops the tasks.

The test route is a second rule with the same path on the environment's *test* listener;
it always forwards 100% to the idle slot, which ``EcsCompute.provision`` points it at.
"""

from __future__ import annotations

from pipeline.aws.alb.rules import AlbRoute, SlotTargetGroups
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec
from pipeline.core.model import Slot, Weights

IAM_ACTIONS: frozenset[str] = frozenset(
    {"elasticloadbalancing:DescribeRules", "elasticloadbalancing:ModifyRule"}
)
# Seconds between verifying that a slot gets no traffic and scaling it down. AWS documents
# no propagation time for rule changes and no API shows it; this is a margin, not a proof.
# A request a stale node still sends to a slot whose targets all drain gets a 503. Short
# next to any analysis window, so it costs a deployment almost nothing.
WEIGHT_SETTLE_SECONDS = 15.0


class AlbListenerRouter:
    """Weighted forward between ``<svc>-blue`` and ``<svc>-green`` on one listener rule."""

    def __init__(self, route: AlbRoute) -> None:
        self.route = route

    def set_weights(self, weights: Weights) -> None:
        """Request the split. Idempotent: no ModifyRule when the rule already applies it."""
        self.route.write(weights)

    def get_weights(self) -> Weights | None:
        """The split the rule applies, read back from AWS; None when the rule does not exist."""
        return self.route.read()


def service_routes(
    session: AwsSession, env: AwsEnvironment, spec: EcsServiceSpec
) -> tuple[AlbRoute, AlbRoute]:
    """The live route and the test route of ``spec``, sharing one target-group lookup."""
    groups = SlotTargetGroups(session, (spec.target_group(Slot.BLUE), spec.target_group(Slot.GREEN)))
    live = AlbRoute(session, env.listener_arn, spec.route_path, groups)
    test = AlbRoute(session, env.test_listener_arn, spec.route_path, groups)
    return live, test
