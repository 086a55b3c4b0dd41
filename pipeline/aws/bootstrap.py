"""``pipeline bootstrap``: one step type, one executor, and the environment's own steps.

Plan, then execute: planning only reads, and each ``BootstrapStep`` says whether its
resource exists and how to create it. ``describe`` renders a plan as ``--dry-run`` prints
it and ``execute`` runs that same list, so the dry run shows exactly what the executor
does. Every planner returns ``BootstrapStep`` values: the environment's here
(``plan_environment``), an ECS service's in ``pipeline.aws.ecs.bootstrap``, a Lambda
service's in ``pipeline.aws.lambda_.bootstrap``.

Resources the toolkit does not own (the cluster, the ALB listeners, the VPC) are checked,
never created: a missing one stops the run before anything is created. Existing
resources are left as they are (no drift correction); a second run creates nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws.errors import aws_errors, error_code, translate
from pipeline.aws.session import AwsSession
from pipeline.aws.settings import AwsEnvironment
from pipeline.aws.state.table import ensure_table, table_status
from pipeline.core.errors import NotFoundError
from pipeline.core.ports import Clock

__all__ = ["IAM_ACTIONS", "BootstrapStep", "describe", "execute", "plan_environment", "probe"]

# The checks of plan_environment (the state table's actions are pipeline.aws.state's)
IAM_ACTIONS: frozenset[str] = frozenset({"ecs:DescribeClusters", "elasticloadbalancing:DescribeListeners"})


@dataclass(frozen=True, slots=True)
class BootstrapStep:
    """One resource: ``exists`` now, and how to ``create`` it (None: not managed here).

    ``detail`` says what the resource is for when its name does not (e.g. a placeholder).
    """

    kind: str
    name: str
    exists: bool
    create: Callable[[], None] | None = field(default=None, compare=False, repr=False)
    detail: str = field(default="", compare=False)

    @property
    def action(self) -> str:
        if self.exists:
            return "exists"
        return "create" if self.create is not None else "missing"


def describe(steps: Sequence[BootstrapStep]) -> list[str]:
    """The plan, one line per resource, as ``--dry-run`` prints it."""
    width = max((len(st.kind) for st in steps), default=0)
    return [f"{st.action:<7} {st.kind:<{width}}  {st.name}" for st in steps]


def execute(steps: Sequence[BootstrapStep]) -> list[BootstrapStep]:
    """Create what is missing, in order; return the created steps. Refuses if any resource
    the toolkit does not manage is missing, before creating anything."""
    missing = [st for st in steps if st.action == "missing"]
    if missing:
        raise NotFoundError(
            "cannot bootstrap: " + "; ".join(f"{st.kind} {st.name} does not exist" for st in missing),
            hint="create it with your infrastructure code (or fix its name in pipeline.yaml), "
            "then run `pipeline bootstrap` again",
        )
    created: list[BootstrapStep] = []
    for step in steps:
        if step.action == "create" and step.create is not None:
            step.create()
            created.append(replace(step, exists=True))
    return created


def plan_environment(session: AwsSession, env: AwsEnvironment, clock: Clock) -> list[BootstrapStep]:
    """The environment's state table, and checks of its cluster and listeners."""
    table = env.state_table
    steps = [
        BootstrapStep(
            "DynamoDB table",
            table,
            bool(table_status(session, table)),
            lambda: _ignore(ensure_table(session, table, clock)),
        ),
        BootstrapStep("ECS cluster", env.cluster, _cluster_exists(session, env.cluster)),
    ]
    for listener in dict.fromkeys((env.listener_arn, env.test_listener_arn)):
        steps.append(BootstrapStep("ALB listener", listener, _listener_exists(session, listener)))
    return steps


def probe(doing: str, missing: set[str], call: Callable[[], object]) -> bool:
    """Whether ``call`` finds its resource: False when AWS answers one of the ``missing`` codes."""
    try:
        call()
    except ClientError as exc:
        if error_code(exc) in missing:
            return False
        raise translate(exc, doing) from exc
    except BotoCoreError as exc:
        raise translate(exc, doing) from exc
    return True


def _ignore(_: object) -> None:
    return None


def _cluster_exists(session: AwsSession, cluster: str) -> bool:
    with aws_errors(f"describe ECS cluster {cluster}"):
        found = session.client("ecs").describe_clusters(clusters=[cluster])["clusters"]
    return any(c.get("status") == "ACTIVE" for c in found)


def _listener_exists(session: AwsSession, arn: str) -> bool:
    elbv2 = session.client("elbv2")
    return probe(
        f"describe listener {arn}", {"ListenerNotFound"}, lambda: elbv2.describe_listeners(ListenerArns=[arn])
    )
