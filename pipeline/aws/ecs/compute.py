"""``EcsCompute``: the Compute port on ECS (Fargate) behind an ALB.

Each service has two slot services in the environment's cluster, ``<svc>-blue`` and
``<svc>-green``, each bound to its own target group (created by ``pipeline bootstrap``).

- ``provision(slot, release)`` renders the task definition for the release (image pinned
  by digest), reuses the slot's current revision or the family's latest one when it is
  the same definition, registers a new revision otherwise, and updates the slot service to
  it with the desired count. It then points the test listener rule at the slot. Idempotent:
  run again, it makes no call that changes anything.
- ``health(slot, release)`` is truthful: ready only when the slot service runs *this*
  revision (the described task definition equals the rendering for the release), no task
  of another deployment is running, ``runningCount == desiredCount`` and every target in
  the slot's target group is healthy. Otherwise ``detail`` carries the evidence (service
  events, stopped-task reasons, target-health reasons).
- ``scale_down(slot)`` waits the target group's deregistration delay (the engine has
  already verified that traffic left the slot), then sets the desired count to 0.
  Idempotent: a slot already at 0 returns at once. ``drain_wait=False`` skips the wait,
  for an engine that holds for the delay itself (renewing its lease meanwhile).
- ``endpoint(slot)`` is the test listener's URL for the service's path, after making sure
  the test rule forwards to ``slot``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws.alb.rules import AlbRoute, SlotTargetGroups
from pipeline.aws.ecs.slot import SlotFacts, describe_service, explain, read_facts
from pipeline.aws.ecs.taskdef import image_of, render, same_definition
from pipeline.aws.errors import aws_errors, error_code, translate
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec, path_prefix
from pipeline.core.model import Release, Slot, SlotHealth, Weights
from pipeline.core.ports import Clock

IAM_ACTIONS: frozenset[str] = frozenset(
    {
        "ecs:UpdateService",
        "ecs:DescribeTaskDefinition",
        "ecs:RegisterTaskDefinition",
        "iam:PassRole",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeLoadBalancers",
    }
)


class EcsCompute:
    """Compute for one ECS service in one environment."""

    def __init__(
        self,
        session: AwsSession,
        env: AwsEnvironment,
        spec: EcsServiceSpec,
        *,
        groups: SlotTargetGroups,
        test_route: AlbRoute,
        clock: Clock,
        drain_wait: bool = True,
    ) -> None:
        self._session = session
        self.env = env
        self.spec = spec
        self._groups = groups
        self._test_route = test_route
        self._clock = clock
        self._drain_wait = drain_wait
        self._definitions: dict[str, dict[str, Any]] = {}  # revision ARN -> described (immutable)
        self._test_base = ""

    # --- the port ---------------------------------------------------------------------

    def provision(self, slot: Slot, release: Release) -> None:
        """Run ``release`` in ``slot`` (no waiting). Idempotent."""
        wanted = render(self.env, self.spec, image_of(self.env, self.spec, release))
        name = self.spec.slot_service(slot)
        service = describe_service(self._session, self.env.cluster, name)
        revision = self._revision(wanted, service.get("taskDefinition", ""))
        desired = self.spec.desired_count
        if service.get("taskDefinition") != revision or service.get("desiredCount") != desired:
            with aws_errors(f"update service {name} to {revision}"):
                self._session.client("ecs").update_service(
                    cluster=self.env.cluster,
                    service=name,
                    taskDefinition=revision,
                    desiredCount=desired,
                )
        self._test_route.write(Weights.all_to(slot))

    def health(self, slot: Slot, release: Release) -> SlotHealth:
        """Whether ``slot`` runs *this* release with every task and target healthy."""
        wanted = render(self.env, self.spec, image_of(self.env, self.spec, release))
        facts = read_facts(
            self._session, self.env.cluster, self.spec.slot_service(slot), self._groups.arns().of(slot)
        )
        on_release = bool(facts.task_definition) and same_definition(
            self._describe_revision(facts.task_definition), wanted
        )
        matches = on_release and facts.older_running == 0 and not facts.rollout_failed
        healthy = facts.healthy_targets
        if not facts.all_targets_healthy:
            healthy = min(healthy, max(0, facts.desired - 1))  # every target must pass, not most
        health = SlotHealth(
            running=facts.running, desired=facts.desired, healthy=healthy, revision_matches=matches
        )
        return health if health.ready else replace(health, detail=self._why(facts, slot, on_release))

    def scale_down(self, slot: Slot) -> None:
        """Wait the deregistration delay, then desired count 0. Idempotent."""
        name = self.spec.slot_service(slot)
        service = describe_service(self._session, self.env.cluster, name)
        if int(service.get("desiredCount", 0)) == 0:
            return
        if self._drain_wait:
            self._clock.sleep(self.spec.deregistration_delay)
        with aws_errors(f"scale service {name} down to 0"):
            self._session.client("ecs").update_service(cluster=self.env.cluster, service=name, desiredCount=0)

    def endpoint(self, slot: Slot) -> str:
        """The test listener URL of the service's path; the test rule forwards only to ``slot``."""
        self._test_route.write(Weights.all_to(slot))
        return self._test_listener_base() + path_prefix(self.spec.route_path)

    # --- internals --------------------------------------------------------------------

    def _revision(self, wanted: dict[str, Any], current: str) -> str:
        """The ARN of a revision equal to ``wanted``: current, the family's latest, or a new one."""
        if current and same_definition(self._describe_revision(current), wanted):
            return current
        latest = self._latest_revision()
        if latest and same_definition(latest, wanted):
            return str(latest["taskDefinitionArn"])
        with aws_errors(f"register a task definition revision of {self.spec.family}"):
            # one attempt: a blind retry could register a duplicate revision; the engine's
            # retry of provision finds the one that did get registered as the family's latest
            answer = self._session.client("ecs", retries=False).register_task_definition(**wanted)
        described: dict[str, Any] = answer["taskDefinition"]
        self._definitions[described["taskDefinitionArn"]] = described
        return str(described["taskDefinitionArn"])

    def _describe_revision(self, arn: str) -> dict[str, Any]:
        """A described task definition revision (cached: revisions are immutable)."""
        if arn not in self._definitions:
            with aws_errors(f"describe task definition {arn}"):
                answer = self._session.client("ecs").describe_task_definition(taskDefinition=arn)
            self._definitions[arn] = answer["taskDefinition"]
        return self._definitions[arn]

    def _latest_revision(self) -> dict[str, Any]:
        """The family's latest ACTIVE revision, or ``{}`` when it has none yet."""
        family = self.spec.family
        try:
            answer = self._session.client("ecs").describe_task_definition(taskDefinition=family)
        except ClientError as exc:
            if error_code(exc) == "ClientException":  # ECS's answer for an unknown family
                return {}
            raise translate(exc, f"describe task definition family {family}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"describe task definition family {family}") from exc
        described: dict[str, Any] = answer["taskDefinition"]
        self._definitions[described["taskDefinitionArn"]] = described
        return described

    def _why(self, facts: SlotFacts, slot: Slot, on_release: bool) -> str:
        prefix = "" if on_release else f"{facts.name} runs {facts.task_definition or 'nothing'}; "
        return prefix + explain(self._session, self.env.cluster, facts, self.spec.target_group(slot))

    def _test_listener_base(self) -> str:
        if self.env.test_url:
            return self.env.test_url.rstrip("/")
        if not self._test_base:
            elbv2 = self._session.client("elbv2")
            with aws_errors(f"describe the test listener {self.env.test_listener_arn}"):
                listener = elbv2.describe_listeners(ListenerArns=[self.env.test_listener_arn])["Listeners"][0]
                balancer = elbv2.describe_load_balancers(LoadBalancerArns=[listener["LoadBalancerArn"]])
            dns = balancer["LoadBalancers"][0]["DNSName"]
            scheme = "https" if listener.get("Protocol") == "HTTPS" else "http"
            self._test_base = f"{scheme}://{dns}:{listener['Port']}"
        return self._test_base
