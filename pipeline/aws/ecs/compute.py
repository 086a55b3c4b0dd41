"""``EcsCompute``: the Compute port on ECS (Fargate) behind an ALB.

Each service has two slot services in the environment's cluster, ``<svc>-blue`` and
``<svc>-green``, each bound to its own target group (created by ``pipeline bootstrap``).

- ``provision(slot, release)`` makes sure the release's digest is in the environment's
  registry (copied by digest from the release's registry when that is another account or
  region, see ``pipeline.aws.ecr.mirror``), renders the task definition for it (image
  pinned by digest), reuses the slot's current revision or the family's latest one when it
  is the same definition (compared as sets: ECS reorders lists), registers a new revision
  otherwise, and updates the slot service to it with the desired count and the service's
  health-check grace period. It returns the revision's ARN (the engine keeps it in the
  deployment state) and remembers it for ``health``, then points the test listener rule at
  the slot. Idempotent: run again, it makes no call that changes anything.
- ``recall(slot, release, arn)``: a resumed deployment (another process) hands back the ARN
  ``provision`` returned; ``provision`` then keeps that revision (while it still equals the
  rendering) and ``health`` compares ARNs again.
- ``health(slot, release)`` is truthful: ready only when the slot service runs *this*
  revision (the ARN ``provision`` chose or ``recall`` handed back: a revision of the same
  family registered by anyone else is not this deployment's, however equal; only for a
  deployment saved without an ARN, a revision whose definition equals the rendering for
  the release), no task of another deployment is running,
  ``runningCount == desiredCount`` and every target in the slot's target group is healthy.
  Otherwise ``detail`` carries the evidence (service events, stopped-task reasons and exit
  codes, target-health reasons). A rollout of this revision that ECS's deployment circuit
  breaker marked FAILED raises ``PlatformError`` at once, quoting why its tasks stopped:
  waiting longer cannot make it ready.
- ``scale_down(slot)`` sets the desired count to 0. ECS itself deregisters the tasks from
  the target group and stops them only after the deregistration delay, so requests in
  flight finish; nothing waits that delay again here. Idempotent: a slot already at 0
  returns at once.
- ``endpoint(slot)`` is the test listener's URL for the service's path, after making sure
  the test rule forwards to ``slot``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws.alb.rules import AlbRoute, SlotTargetGroups
from pipeline.aws.ecr.mirror import ensure_image
from pipeline.aws.ecs.slot import (
    SlotFacts,
    describe_service,
    explain,
    failed_rollout,
    read_facts,
    stopped_reasons,
)
from pipeline.aws.ecs.taskdef import image_of, render, same_definition
from pipeline.aws.errors import aws_errors, error_code, translate
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment, EcsServiceSpec, path_prefix
from pipeline.core.errors import PlatformError
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
    ) -> None:
        self._session = session
        self.env = env
        self.spec = spec
        self._groups = groups
        self._test_route = test_route
        self._clock = clock
        self._definitions: dict[str, dict[str, Any]] = {}  # revision ARN -> described (immutable)
        self._provisioned: dict[tuple[Slot, str], str] = {}  # (slot, digest) -> revision ARN
        self._test_base = ""

    # --- the port ---------------------------------------------------------------------

    def provision(self, slot: Slot, release: Release) -> str:
        """Run ``release`` in ``slot`` (no waiting); the revision's ARN. Idempotent."""
        image = ensure_image(self._session, self.env.ecr_registry, self.spec.name, release)
        wanted = render(self.env, self.spec, image)
        name = self.spec.slot_service(slot)
        service = describe_service(self._session, self.env.cluster, name)
        chosen = self._provisioned.get((slot, release.digest), "")
        revision = self._revision(wanted, chosen, service.get("taskDefinition", ""))
        desired, grace = self.spec.desired_count, int(self.spec.grace_period)
        current = (
            service.get("taskDefinition"),
            service.get("desiredCount"),
            service.get("healthCheckGracePeriodSeconds"),
        )
        # A rollout the circuit breaker failed stays the PRIMARY deployment: changing only the
        # desired count would not start a new one, so a retry of the same revision forces it.
        retry = bool(failed_rollout(service))
        if current != (revision, desired, grace) or retry:
            options = {"forceNewDeployment": True} if retry else {}
            with aws_errors(f"update service {name} to {revision}"):
                self._session.client("ecs").update_service(
                    cluster=self.env.cluster,
                    service=name,
                    taskDefinition=revision,
                    desiredCount=desired,
                    healthCheckGracePeriodSeconds=grace,
                    **options,
                )
        self._provisioned[(slot, release.digest)] = revision
        self._test_route.write(Weights.all_to(slot))
        return revision

    def recall(self, slot: Slot, release: Release, reference: str) -> None:
        """The revision ARN ``provision`` returned for ``slot`` and ``release`` (a resumed
        deployment): ``health`` compares ARNs with it, ``provision`` prefers it."""
        self._provisioned[(slot, release.digest)] = reference

    def health(self, slot: Slot, release: Release) -> SlotHealth:
        """Whether ``slot`` runs *this* release with every task and target healthy."""
        facts = read_facts(
            self._session, self.env.cluster, self.spec.slot_service(slot), self._groups.arns().of(slot)
        )
        on_release = self._runs(slot, release, facts.task_definition)
        if on_release and facts.rollout_failed:
            raise self._rollout_failed(facts)
        matches = on_release and facts.older_running == 0
        healthy = facts.healthy_targets
        if not facts.all_targets_healthy:
            healthy = min(healthy, max(0, facts.desired - 1))  # every target must pass, not most
        health = SlotHealth(
            running=facts.running, desired=facts.desired, healthy=healthy, revision_matches=matches
        )
        return health if health.ready else replace(health, detail=self._why(facts, slot, on_release))

    def scale_down(self, slot: Slot) -> None:
        """Desired count 0 (ECS drains the targets for the deregistration delay). Idempotent."""
        name = self.spec.slot_service(slot)
        service = describe_service(self._session, self.env.cluster, name)
        if int(service.get("desiredCount", 0)) == 0:
            return
        with aws_errors(f"scale service {name} down to 0"):
            self._session.client("ecs").update_service(cluster=self.env.cluster, service=name, desiredCount=0)

    def endpoint(self, slot: Slot) -> str:
        """The test listener URL of the service's path; the test rule forwards only to ``slot``."""
        self._test_route.write(Weights.all_to(slot))
        return self._test_listener_base() + path_prefix(self.spec.route_path)

    # --- internals --------------------------------------------------------------------

    def _revision(self, wanted: dict[str, Any], chosen: str, current: str) -> str:
        """The ARN of a revision equal to ``wanted``: the one this deployment chose before,
        the slot's current one, the family's latest, or a new one."""
        for arn in (chosen, current):
            if arn and same_definition(self._describe_revision(arn), wanted):
                return arn
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

    def _runs(self, slot: Slot, release: Release, arn: str) -> bool:
        """Whether the revision ``arn`` is ``release``'s: the ARN ``provision`` chose (or
        ``recall`` handed back), or, when neither is known (a deployment saved without it),
        a revision equal to the release's rendering."""
        if not arn:
            return False
        chosen = self._provisioned.get((slot, release.digest))
        if chosen:
            return arn == chosen
        wanted = render(self.env, self.spec, image_of(self.env, self.spec, release))
        return same_definition(self._describe_revision(arn), wanted)

    def _rollout_failed(self, facts: SlotFacts) -> PlatformError:
        stopped = stopped_reasons(self._session, self.env.cluster, facts.name, facts.task_definition)
        evidence = "".join(f"; stopped task: {reason}" for reason in stopped)
        return PlatformError(
            f"ECS rollout of {facts.task_definition} in {facts.name} failed: "
            f"{facts.rollout_failed}{evidence}",
            hint="the deployment circuit breaker stopped launching tasks; fix the release (the "
            "reasons and exit codes above, the task logs) and deploy again",
        )

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
