"""Keep-warm on AWS: an EventBridge schedule that pings a function's ``live`` alias.

``keep_warm_steps(spec, session, every, concurrency)`` plans what ``pipeline bootstrap``
creates for ``lambda.keep_warm``, each step read first and created only when missing or
different (idempotent):

1. the rule ``pipeline-keep-warm-<function>``, ``rate(N minutes)`` (``events:PutRule``;
   EventBridge rates count whole minutes, at least one);
2. its targets: ``concurrency`` targets on the alias ARN, each with the constant input
   ``{"pipeline-keep-warm": true}`` (``events:PutTargets``; a rule holds at most 5
   targets, hence ``concurrency`` 1..5; EventBridge delivers them independently, so the
   pings usually, not certainly, overlap);
3. a resource-based permission on the alias for ``events.amazonaws.com`` from that rule
   only (``lambda:AddPermission`` with ``SourceArn``).

References: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html
(rate expressions), https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quotas.html
(5 targets per rule), https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-lambda-permissions
(the Lambda permission EventBridge needs).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws.bootstrap import BootstrapStep
from pipeline.aws.errors import aws_errors
from pipeline.aws.lambda_.api import is_not_found
from pipeline.aws.lambda_.spec import LambdaSpec
from pipeline.aws.session import AwsSession
from pipeline.core.keep_warm import KEEP_WARM_EVENT

__all__ = ["BOOTSTRAP_ACTIONS", "keep_warm_steps", "rate", "rule_name"]

BOOTSTRAP_ACTIONS: frozenset[str] = frozenset({
    "events:DescribeRule",
    "events:PutRule",
    "events:ListTargetsByRule",
    "events:PutTargets",
    "events:RemoveTargets",
    "lambda:GetPolicy",
    "lambda:AddPermission",
})
INPUT = json.dumps(KEEP_WARM_EVENT)


def rule_name(function: str) -> str:
    """The keep-warm rule of ``function`` (EventBridge rule names: at most 64 characters)."""
    return f"pipeline-keep-warm-{function}"[:64]


def rate(every: float) -> str:
    """``every`` seconds (whole minutes) as an EventBridge rate expression."""
    minutes = max(1, int(every // 60))
    return f"rate({minutes} minute{'s' if minutes > 1 else ''})"


def keep_warm_steps(
    spec: LambdaSpec, session: AwsSession, every: float, concurrency: int
) -> list[BootstrapStep]:
    """The rule, its targets and the alias's permission for ``spec``'s function (reads only)."""
    return _KeepWarm(spec, session, every, concurrency).steps()


class _KeepWarm:
    def __init__(self, spec: LambdaSpec, session: AwsSession, every: float, concurrency: int) -> None:
        self.spec = spec
        self.events = session.client("events")
        self.client = session.client("lambda")
        self.rule = rule_name(spec.function)
        self.schedule = rate(every)
        self.concurrency = concurrency
        self.alias_arn = f"{spec.function_arn}:{spec.alias}"
        self.sid = f"pipeline-keep-warm-{spec.alias}"

    def steps(self) -> list[BootstrapStep]:
        current = self._rule()
        rule_ok = current is not None and current.get("ScheduleExpression") == self.schedule \
            and current.get("State") == "ENABLED"
        targets_ok = current is not None and self._targets() == self._wanted()
        permission_ok = current is not None and self._has_permission(str(current.get("Arn", "")))
        return [
            BootstrapStep("keep-warm rule", self.rule, rule_ok, self._put_rule, f"{self.schedule}"),
            BootstrapStep("keep-warm targets", self.rule, targets_ok, self._put_targets,
                          f"{self.concurrency} x {self.alias_arn}"),
            BootstrapStep("keep-warm permission", f"{self.spec.function}:{self.spec.alias}", permission_ok,
                          self._add_permission, "events.amazonaws.com from the keep-warm rule"),
        ]

    # --- reads ------------------------------------------------------------------------

    def _rule(self) -> dict[str, Any] | None:
        try:
            rule: dict[str, Any] = self.events.describe_rule(Name=self.rule)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            with aws_errors(f"read EventBridge rule {self.rule}"):
                raise
        return rule

    def _targets(self) -> set[tuple[str, str, str]]:
        with aws_errors(f"list the targets of EventBridge rule {self.rule}"):
            found = self.events.list_targets_by_rule(Rule=self.rule).get("Targets", [])
        return {(str(t.get("Id")), str(t.get("Arn")), _canonical(t.get("Input"))) for t in found}

    def _wanted(self) -> set[tuple[str, str, str]]:
        return {(f"keep-warm-{i}", self.alias_arn, _canonical(INPUT)) for i in range(1, self.concurrency + 1)}

    def _has_permission(self, rule_arn: str) -> bool:
        try:
            data = self.client.get_policy(FunctionName=self.spec.function, Qualifier=self.spec.alias)
        except ClientError as exc:
            if is_not_found(exc):
                return False
            with aws_errors(f"read the resource policy of {self.alias_arn}"):
                raise
        statements = json.loads(str(data.get("Policy", "{}"))).get("Statement", [])
        return any(s.get("Sid") == self.sid and rule_arn and rule_arn in json.dumps(s) for s in statements)

    # --- writes (each idempotent) -------------------------------------------------------

    def _put_rule(self) -> None:
        with aws_errors(f"create EventBridge rule {self.rule}"):
            self.events.put_rule(
                Name=self.rule, ScheduleExpression=self.schedule, State="ENABLED",
                Description=f"keeps {self.spec.function}:{self.spec.alias} warm (pipeline)",
            )

    def _put_targets(self) -> None:
        stale = {t[0] for t in self._targets()} - {t[0] for t in self._wanted()}
        with aws_errors(f"set the targets of EventBridge rule {self.rule}"):
            if stale:  # a lower concurrency than before: fewer pings
                self.events.remove_targets(Rule=self.rule, Ids=sorted(stale))
            targets = [{"Id": i, "Arn": arn, "Input": INPUT} for i, arn, _ in sorted(self._wanted())]
            answer = self.events.put_targets(Rule=self.rule, Targets=targets)
        if answer.get("FailedEntryCount"):
            failed = "; ".join(str(e.get("ErrorMessage", "")) for e in answer.get("FailedEntries", []))
            with aws_errors(f"set the targets of EventBridge rule {self.rule}"):
                raise ClientError({"Error": {"Code": "FailedEntries", "Message": failed}}, "PutTargets")

    def _add_permission(self) -> None:
        rule_arn = str((self._rule() or {}).get("Arn", ""))
        with aws_errors(f"allow EventBridge to invoke {self.alias_arn}"):
            self.client.add_permission(
                FunctionName=self.spec.function, Qualifier=self.spec.alias, StatementId=self.sid,
                Action="lambda:InvokeFunction", Principal="events.amazonaws.com", SourceArn=rule_arn,
            )


def _canonical(value: object) -> str:
    try:
        return json.dumps(json.loads(str(value)), sort_keys=True)
    except ValueError:
        return str(value)
