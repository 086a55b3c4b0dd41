"""ALB building blocks shared by the router, the compute adapter and bootstrap.

``SlotTargetGroups`` resolves a service's two target groups (names from
``pipeline.aws.settings``) to ARNs once. ``AlbRoute`` is one path-based listener rule that
forwards between them with weights: ``read()`` parses the rule's forward action back into
``Weights``, ``write()`` changes it only when it differs (read, then modify), so repeating a
write is free and leaves no trace in CloudTrail.

AWS forward weights are 0..999 per target group; the toolkit writes integer percentages
directly (they sum to 100) and reads any weights back as percentages of their sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.aws.errors import aws_errors
from pipeline.aws.session import AwsSession
from pipeline.core.errors import NotFoundError, PlatformError
from pipeline.core.model import Slot, Weights

IAM_ACTIONS: frozenset[str] = frozenset(
    {
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:ModifyRule",
    }
)


@dataclass(frozen=True, slots=True)
class TargetGroupArns:
    blue: str
    green: str

    def of(self, slot: Slot) -> str:
        return self.green if slot is Slot.GREEN else self.blue


class SlotTargetGroups:
    """The ARNs of a service's blue and green target groups, looked up once (one call)."""

    def __init__(self, session: AwsSession, names: tuple[str, str]) -> None:
        self._session = session
        self.names = names
        self._arns: TargetGroupArns | None = None

    def arns(self) -> TargetGroupArns:
        if self._arns is None:
            blue, green = self.names
            with aws_errors(f"look up target groups {blue} and {green}"):
                found = self._session.client("elbv2").describe_target_groups(Names=[blue, green])
            by_name = {tg["TargetGroupName"]: tg["TargetGroupArn"] for tg in found["TargetGroups"]}
            missing = [n for n in self.names if n not in by_name]
            if missing:
                raise NotFoundError(
                    f"target group {missing[0]} does not exist",
                    hint="create the service's AWS resources with `pipeline bootstrap --env ENV SERVICE`",
                )
            self._arns = TargetGroupArns(by_name[blue], by_name[green])
        return self._arns


def forward_action(arns: TargetGroupArns, weights: Weights) -> dict[str, Any]:
    """A weighted forward action to both slots (stickiness off: a split is per request)."""
    return {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": arns.blue, "Weight": weights.blue},
                {"TargetGroupArn": arns.green, "Weight": weights.green},
            ],
            "TargetGroupStickinessConfig": {"Enabled": False},
        },
    }


def weights_of(rule: dict[str, Any], arns: TargetGroupArns) -> Weights | None:
    """The split a rule's forward action applies, as percentages; None if it forwards nowhere.

    Raises PlatformError when the rule forwards traffic to a target group of another service.
    """
    forward = next((a for a in rule.get("Actions", []) if a.get("Type") == "forward"), None)
    if forward is None:
        return None
    groups = forward.get("ForwardConfig", {}).get("TargetGroups") or (
        [{"TargetGroupArn": forward["TargetGroupArn"], "Weight": 1}] if forward.get("TargetGroupArn") else []
    )
    weight = {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
    foreign = [arn for arn, w in weight.items() if w > 0 and arn not in (arns.blue, arns.green)]
    if foreign:
        raise PlatformError(
            f"listener rule {rule.get('RuleArn', '?')} forwards to {foreign[0]}, "
            "which is neither slot of this service",
            hint="someone changed the rule by hand: point it back at the service's blue and green "
            "target groups (or delete it and run `pipeline bootstrap`)",
        )
    blue, green = weight.get(arns.blue, 0), weight.get(arns.green, 0)
    if blue + green == 0:
        return None
    blue_percent = round(100 * blue / (blue + green))
    return Weights(blue=blue_percent, green=100 - blue_percent)


class AlbRoute:
    """The listener rule that matches ``path`` on ``listener_arn`` and splits between slots."""

    def __init__(self, session: AwsSession, listener_arn: str, path: str, groups: SlotTargetGroups) -> None:
        self._session = session
        self.listener_arn = listener_arn
        self.path = path
        self.groups = groups
        self._rule_arn: str | None = None

    def find(self) -> dict[str, Any] | None:
        """The rule as AWS describes it (one call once its ARN is known), or None."""
        elbv2 = self._session.client("elbv2")
        if self._rule_arn is not None:
            with aws_errors(f"read listener rule {self.path}"):
                rules = elbv2.describe_rules(RuleArns=[self._rule_arn])["Rules"]
            return rules[0] if rules else None
        with aws_errors(f"find the listener rule for {self.path} on {self.listener_arn}"):
            pages = elbv2.get_paginator("describe_rules").paginate(ListenerArn=self.listener_arn)
            for page in pages:
                for rule in page["Rules"]:
                    if self.path in _path_patterns(rule):
                        self._rule_arn = rule["RuleArn"]
                        return dict(rule)
        return None

    def read(self) -> Weights | None:
        """The split the rule applies now; None when there is no rule yet."""
        rule = self.find()
        return weights_of(rule, self.groups.arns()) if rule else None

    def write(self, weights: Weights) -> bool:
        """Make the rule apply ``weights``. Idempotent; returns whether the rule changed."""
        rule = self.find()
        if rule is None:
            raise NotFoundError(
                f"no listener rule for path {self.path} on {self.listener_arn}",
                hint="create it with `pipeline bootstrap --env ENV SERVICE`",
            )
        arns = self.groups.arns()
        if weights_of(rule, arns) == weights:
            return False
        with aws_errors(f"set {weights} on the listener rule for {self.path}"):
            self._session.client("elbv2").modify_rule(
                RuleArn=rule["RuleArn"], Actions=[forward_action(arns, weights)]
            )
        return True


def _path_patterns(rule: dict[str, Any]) -> list[str]:
    values: list[str] = []
    for condition in rule.get("Conditions", []):
        if condition.get("Field") == "path-pattern":
            values += condition.get("PathPatternConfig", {}).get("Values", [])
            values += condition.get("Values", [])
    return values
