"""What AWS says about one slot: its ECS service, its targets, and why it is not ready.

``SlotFacts`` is read from ``DescribeServices`` and ``DescribeTargetHealth`` (two calls);
``explain()`` adds the evidence a human needs when the slot is not ready: the service's
latest events, the reasons its recent tasks stopped, the failing targets' reasons and a
failed rollout (two more calls, only on the unhappy path).

Running count: ``runningCount`` of the service counts every task of the slot, including
tasks of an older revision still running during a rollout; those make the slot not ready.
Tasks of other deployments are the ``runningCount`` of the non-PRIMARY entries of
``deployments``. (moto keeps one PRIMARY deployment from service creation and reports the
service-level count; both read correctly here.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.aws.errors import aws_errors
from pipeline.aws.session import AwsSession
from pipeline.core.errors import NotFoundError

IAM_ACTIONS: frozenset[str] = frozenset(
    {
        "ecs:DescribeServices",
        "ecs:ListTasks",
        "ecs:DescribeTasks",
        "elasticloadbalancing:DescribeTargetHealth",
    }
)
MAX_EVIDENCE = 3  # lines of each kind in a detail


@dataclass(frozen=True, slots=True)
class TargetState:
    target: str
    state: str
    reason: str = ""

    @property
    def healthy(self) -> bool:
        return self.state == "healthy"


@dataclass(frozen=True, slots=True)
class SlotFacts:
    """A slot's service and targets as AWS describes them now."""

    name: str
    task_definition: str
    desired: int
    running: int
    older_running: int  # tasks of other (non-PRIMARY) deployments still running
    rollout_failed: str  # reason of a FAILED primary rollout, else ""
    events: tuple[str, ...]
    targets: tuple[TargetState, ...]

    @property
    def healthy_targets(self) -> int:
        return sum(1 for t in self.targets if t.healthy)

    @property
    def all_targets_healthy(self) -> bool:
        return all(t.healthy for t in self.targets)


def describe_service(session: AwsSession, cluster: str, name: str) -> dict[str, Any]:
    """The ECS service ``name`` (ACTIVE); NotFoundError naming bootstrap otherwise."""
    with aws_errors(f"describe service {name} in cluster {cluster}"):
        answer = session.client("ecs").describe_services(cluster=cluster, services=[name])
    for service in answer.get("services", []):
        if service.get("status") == "ACTIVE":
            return dict(service)
    raise NotFoundError(
        f"ECS service {name} does not exist in cluster {cluster}",
        hint="create the service's slots with `pipeline bootstrap --env ENV SERVICE`",
    )


def read_facts(session: AwsSession, cluster: str, name: str, target_group_arn: str) -> SlotFacts:
    service = describe_service(session, cluster, name)
    with aws_errors(f"read the target health of {name}"):
        health = session.client("elbv2").describe_target_health(TargetGroupArn=target_group_arn)
    targets = tuple(
        TargetState(
            target=f"{d['Target']['Id']}:{d['Target'].get('Port', '')}",
            state=d["TargetHealth"]["State"],
            reason=_reason(d["TargetHealth"]),
        )
        for d in health["TargetHealthDescriptions"]
    )
    deployments = service.get("deployments", [])
    return SlotFacts(
        name=name,
        task_definition=service.get("taskDefinition", ""),
        desired=int(service.get("desiredCount", 0)),
        running=int(service.get("runningCount", 0)),
        older_running=sum(int(d.get("runningCount", 0)) for d in deployments if d.get("status") != "PRIMARY"),
        rollout_failed=failed_rollout(service),
        events=tuple(e.get("message", "") for e in service.get("events", [])[:MAX_EVIDENCE]),
        targets=targets,
    )


def failed_rollout(service: dict[str, Any]) -> str:
    """Why the service's PRIMARY deployment failed (circuit breaker), or "" when it did not."""
    deployments = service.get("deployments", [])
    primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
    if primary.get("rolloutState") != "FAILED":
        return ""
    return str(primary.get("rolloutStateReason") or "rollout state FAILED")


def _reason(health: dict[str, Any]) -> str:
    parts = [health.get("Reason") or "", health.get("Description") or ""]
    return ": ".join(p for p in parts if p)


def explain(session: AwsSession, cluster: str, facts: SlotFacts, target_group: str) -> str:
    """Why the slot is not ready, as one line of evidence (``; ``-separated)."""
    lines: list[str] = []
    if facts.older_running:
        lines.append(f"{facts.older_running} task(s) of an older revision still running")
    if facts.rollout_failed:
        lines.append(f"rollout failed: {facts.rollout_failed}")
    if not facts.targets:
        lines.append(f"no targets registered in target group {target_group}")
    for target in [t for t in facts.targets if not t.healthy][:MAX_EVIDENCE]:
        why = f" ({target.reason})" if target.reason else ""
        lines.append(f"target {target.target} {target.state}{why}")
    stopped = stopped_reasons(session, cluster, facts.name, facts.task_definition)
    lines += [f"stopped task: {reason}" for reason in stopped]
    lines += [f"event: {message}" for message in facts.events]
    return "; ".join(lines)


def stopped_reasons(session: AwsSession, cluster: str, service: str, revision: str = "") -> list[str]:
    """Why the service's most recent tasks stopped (at most ``MAX_EVIDENCE``), with each
    container's exit code or reason; tasks of ``revision`` first when it is given."""
    ecs = session.client("ecs")
    with aws_errors(f"list the stopped tasks of {service}"):
        arns = ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="STOPPED")["taskArns"]
        if not arns:
            return []
        tasks = ecs.describe_tasks(cluster=cluster, tasks=arns[:100])["tasks"]
    mine = [t for t in tasks if t.get("group") in (None, f"service:{service}")]
    mine.sort(key=lambda t: str(t.get("stoppedAt", "")), reverse=True)
    mine.sort(key=lambda t: bool(revision) and t.get("taskDefinitionArn") != revision)  # stable
    return [_stopped(t) for t in mine[:MAX_EVIDENCE]]


def _stopped(task: dict[str, Any]) -> str:
    """``stoppedReason (container: exit N, reason)``: the task's and its containers' evidence."""
    reason = task.get("stoppedReason") or task.get("stopCode") or "no reason given"
    containers = []
    for c in task.get("containers", []):
        code = c.get("exitCode")
        parts = ([f"exit {code}"] if code is not None else []) + ([c["reason"]] if c.get("reason") else [])
        if parts and (code not in (None, 0) or c.get("reason")):
            containers.append(f"{c.get('name')}: {', '.join(parts)}")
    return reason + (f" ({'; '.join(containers)})" if containers else "")
