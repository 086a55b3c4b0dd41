"""A realism layer for the adapter tier: the AWS test endpoint made to behave like AWS.

The test endpoint (moto) is kinder than AWS. It returns lists in the order they were
sent, publishes metrics the instant they are put, never expires credentials and checks
few request values. Code that passes against it can still break on AWS. Every botocore
session made during the adapter tests gets the event hooks below, so the adapters are
tested against AWS's documented behaviour instead:

- **Order.** Lists whose order AWS does not guarantee come back reversed (``after-call``).
  ECS returns a task definition's ``environment``, ``secrets`` and other lists in its own
  order, not the order sent (aws/aws-sdk-java#3043, hashicorp/terraform-provider-aws#3035);
  ``DescribeTargetHealth``, ``DescribeRules``, ``DescribeAlarms`` and the ``List*`` calls
  document no order at all.
- **Metric delay.** ``GetMetricData`` hides datapoints younger than a delay of 60-180 s
  (drawn per metric query, repeatable per test) measured on the test's clock: ALB and
  Lambda publish one-minute aggregates that land minutes late
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html,
  "Metrics are usually available within ... minutes"). Its ``StartTime`` is rounded down
  to the minute, as CloudWatch does
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html).
  Datapoints come newest first, ``TimestampDescending`` being the default ``ScanBy``.
- **Credential expiry.** Static credentials (environment variables, as an OIDC step in
  GitHub Actions leaves them) stop working an hour after first use on the test's clock,
  with the ``ExpiredToken`` error STS-issued credentials give
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_request.html);
  credentials from ``AssumeRole``/``AssumeRoleWithWebIdentity`` expire at the
  ``Expiration`` the endpoint returned.
- **Atomic conditional writes.** DynamoDB requests reach the endpoint one at a time
  (``AtomicDynamoMotoServer``), as DynamoDB applies each conditional write atomically.
- **Strict requests.** Every request's values are checked against the service model's
  ``max``/``min`` lengths and values, ``enum`` and ``pattern`` before it is sent. botocore
  checks types and required members but not these, and AWS answers a violation with a
  ``ValidationException``; the test endpoint mostly accepts it.

``realism_state()`` is the current test's state: tests read what the layer did
(``state.expired``, ``state.hidden_datapoints``) or tune it (``state.metric_delay``).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import botocore.session
from botocore.exceptions import ClientError, ParamValidationError
from botocore.model import ListShape, MapShape, Shape, StructureShape
from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.server import DomainDispatcherApplication, ThreadedMotoServer, create_backend_app
from werkzeug.serving import make_server

Now = Callable[[], float]

# (service id as botocore hyphenizes it, operation) -> paths of lists AWS returns in no
# promised order. "*" walks every element of a list.
UNORDERED: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {}


def _unordered(service: str, operations: Iterable[str], *paths: str) -> None:
    for operation in operations:
        UNORDERED[(service, operation)] = tuple(tuple(p.split(".")) for p in paths)


_CONTAINER_LISTS = ("environment", "secrets", "portMappings", "mountPoints", "ulimits", "volumesFrom",
                    "dependsOn", "environmentFiles", "extraHosts", "systemControls")
_TASK_DEFINITION_LISTS = (
    *(f"taskDefinition.containerDefinitions.*.{name}" for name in _CONTAINER_LISTS),
    "taskDefinition.containerDefinitions", "taskDefinition.requiresAttributes",
    "taskDefinition.compatibilities", "taskDefinition.volumes", "taskDefinition.placementConstraints",
)
_unordered("ecs", ("DescribeTaskDefinition", "RegisterTaskDefinition"), *_TASK_DEFINITION_LISTS)
_unordered("ecs", ("ListTaskDefinitions",), "taskDefinitionArns")
_unordered("ecs", ("ListTasks",), "taskArns")
_unordered("ecs", ("DescribeTasks",), "tasks", "tasks.*.containers")
_unordered("ecs", ("ListServices",), "serviceArns")
_unordered("ecs", ("DescribeServices",), "services.*.loadBalancers", "services.*.events")
_unordered("elastic-load-balancing-v2", ("DescribeTargetHealth",), "TargetHealthDescriptions")
_unordered("elastic-load-balancing-v2", ("DescribeRules",),
           "Rules", "Rules.*.Conditions", "Rules.*.Actions.*.ForwardConfig.TargetGroups")
_unordered("elastic-load-balancing-v2", ("DescribeTargetGroups",), "TargetGroups")
_unordered("elastic-load-balancing-v2", ("DescribeListeners",), "Listeners")
_unordered("elastic-load-balancing-v2", ("DescribeTags",), "TagDescriptions", "TagDescriptions.*.Tags")
_unordered("cloudwatch", ("DescribeAlarms",), "MetricAlarms", "CompositeAlarms")
_unordered("cloudwatch", ("GetMetricData",), "MetricDataResults")
_unordered("lambda", ("ListAliases",), "Aliases")
_unordered("lambda", ("ListVersionsByFunction",), "Versions")
_unordered("lambda", ("ListFunctions",), "Functions")
_unordered("ecr", ("DescribeImages",), "imageDetails", "imageDetails.*.imageTags")
_unordered("ecr", ("BatchGetImage",), "images")
_unordered("ecr", ("DescribeRepositories",), "repositories")
_unordered("dynamodb", ("Scan",), "Items")
_unordered("apigatewayv2", ("GetRoutes",), "Items")
_unordered("apigatewayv2", ("GetIntegrations",), "Items")
_unordered("iam", ("ListRoles",), "Roles")
_unordered("iam", ("ListAttachedRolePolicies",), "AttachedPolicies")

STATIC_CREDENTIAL_SECONDS = 3600.0


@dataclass
class RealismState:
    """What the layer does for the current test, and what it did."""

    now: Now = time.time
    enabled: bool = True
    reorder: bool = True
    metric_delay: tuple[float, float] = (60.0, 180.0)
    expire_credentials: bool = True
    strict: bool = True
    seed: str = ""
    first_used: dict[str, float] = field(default_factory=dict)
    expiry: dict[str, float] = field(default_factory=dict)
    reordered: int = 0
    hidden_datapoints: int = 0
    expired: list[str] = field(default_factory=list)

    def delay_for(self, query_id: str) -> float:
        low, high = self.metric_delay
        if high <= low:
            return low
        digest = hashlib.sha256(f"{self.seed}/{query_id}".encode()).digest()
        return low + (high - low) * (digest[0] / 255)


class _Current:
    state = RealismState()


def realism_state() -> RealismState:
    return _Current.state


def reset(now: Now, seed: str) -> RealismState:
    _Current.state = RealismState(now=now, seed=seed)
    return _Current.state


# ---------------------------------------------------------------- order


def _reverse_at(node: Any, path: tuple[str, ...]) -> int:
    if not path:
        return 0
    head, rest = path[0], path[1:]
    if head == "*":
        if not isinstance(node, list):
            return 0
        return sum(_reverse_at(item, rest) for item in node)
    if not isinstance(node, dict) or head not in node:
        return 0
    if rest:
        return _reverse_at(node[head], rest)
    value = node[head]
    if isinstance(value, list) and len(value) > 1:
        value.reverse()
        return 1
    return 0


def _reorder(parsed: dict[str, Any], model: Any, **_: Any) -> None:
    state = _Current.state
    if not (state.enabled and state.reorder) or "Error" in parsed:
        return
    service = model.service_model.service_id.hyphenize()
    for path in UNORDERED.get((service, model.name), ()):
        state.reordered += _reverse_at(parsed, path)


# ---------------------------------------------------------------- metrics


def _round_start(params: dict[str, Any], **_: Any) -> None:
    if not _Current.state.enabled:
        return
    start = params.get("StartTime")
    if isinstance(start, datetime):
        params["StartTime"] = start.replace(second=0, microsecond=0)
    elif isinstance(start, int | float):
        params["StartTime"] = float(int(start) // 60 * 60)


def _delay_metrics(parsed: dict[str, Any], **_: Any) -> None:
    state = _Current.state
    if not state.enabled or "Error" in parsed:
        return
    now = state.now()
    for result in parsed.get("MetricDataResults", []):
        pairs = list(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
        cutoff = now - state.delay_for(str(result.get("Id", "")))
        kept = [(ts, v) for ts, v in pairs if _epoch(ts) <= cutoff]
        kept.sort(key=lambda pair: _epoch(pair[0]), reverse=True)  # TimestampDescending
        state.hidden_datapoints += len(pairs) - len(kept)
        result["Timestamps"] = [ts for ts, _ in kept]
        result["Values"] = [v for _, v in kept]


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value)


# ---------------------------------------------------------------- credentials


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def _check_expiry(request: Any, **_: Any) -> None:
    """``before-send``: the request is signed, so the key it carries is the one AWS sees
    (botocore refreshes refreshable credentials while signing)."""
    state = _Current.state
    if not (state.enabled and state.expire_credentials):
        return
    found = _CREDENTIAL.search(str(request.headers.get("Authorization", "")))
    if found is None:
        return
    key = found.group(1)
    now = state.now()
    expires = state.expiry.get(key)
    if expires is None:
        expires = state.first_used.setdefault(key, now) + STATIC_CREDENTIAL_SECONDS
    if now >= expires:
        state.expired.append(key)
        operation = str(request.headers.get("X-Amz-Target", "") or request.url)
        raise ClientError(
            {
                "Error": {"Code": "ExpiredToken",
                          "Message": "The security token included in the request is expired"},
                "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "realism-expired"},
            },
            operation,
        )


def _note_issued(parsed: dict[str, Any], **_: Any) -> None:
    issued = parsed.get("Credentials") or {}
    key, expiration = issued.get("AccessKeyId"), issued.get("Expiration")
    if key and expiration is not None:
        # The endpoint stamps expiry on the wall clock; AWS grants DurationSeconds from
        # the call, which on the test's clock is "now".
        lifetime = max(0.0, _epoch(expiration) - time.time())
        _Current.state.expiry[key] = _Current.state.now() + lifetime


# ---------------------------------------------------------------- strict requests


class StrictRequestError(ParamValidationError):
    """A request value AWS would refuse with a ValidationException."""


_PATTERNS: dict[str, re.Pattern[str] | None] = {}


def _pattern(source: str) -> re.Pattern[str] | None:
    if source not in _PATTERNS:
        try:
            _PATTERNS[source] = re.compile(source)
        except re.error:  # a Java-only construct: not checkable here
            _PATTERNS[source] = None
    return _PATTERNS[source]


def violations(shape: Shape | None, value: Any, where: str) -> list[str]:
    """Values of ``value`` that break ``shape``'s max/min/enum/pattern constraints."""
    if shape is None:
        return []
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return [found for name, member in shape.members.items() if name in value
                for found in violations(member, value[name], f"{where}.{name}")]
    if isinstance(shape, ListShape) and isinstance(value, list | tuple):
        found = _bounds(shape.metadata, len(value), where, "items")
        for i, item in enumerate(value):
            found += violations(shape.member, item, f"{where}[{i}]")
        return found
    if isinstance(shape, MapShape) and isinstance(value, dict):
        found = _bounds(shape.metadata, len(value), where, "entries")
        for k, v in value.items():
            found += violations(shape.key, k, f"{where}.<key {k!r}>")
            found += violations(shape.value, v, f"{where}.{k}")
        return found
    if isinstance(value, str):
        return _string_violations(shape, value, where)
    numeric = shape.type_name in {"integer", "long", "float", "double"}
    if numeric and isinstance(value, int | float) and not isinstance(value, bool):
        return _bounds(shape.metadata, value, where, "")
    return []


def _string_violations(shape: Shape, value: str, where: str) -> list[str]:
    found = _bounds(shape.metadata, len(value), where, "characters")
    enum = shape.enum
    if enum and value not in enum:
        found.append(f"{where}={value!r} is not one of {sorted(enum)}")
    pattern = shape.metadata.get("pattern")
    compiled = _pattern(pattern) if isinstance(pattern, str) else None
    if compiled is not None and not compiled.fullmatch(value):
        found.append(f"{where}={value!r} does not match {pattern!r}")
    return found


def _bounds(meta: dict[str, Any], size: float, where: str, unit: str) -> list[str]:
    found = []
    what = f" {unit}" if unit else ""
    if "max" in meta and size > meta["max"]:
        found.append(f"{where}: {size:g}{what} is above the maximum {meta['max']}")
    if "min" in meta and size < meta["min"] and unit != "characters":
        found.append(f"{where}: {size:g}{what} is below the minimum {meta['min']}")
    return found


def _strict(params: dict[str, Any], model: Any, **_: Any) -> None:
    if not (_Current.state.enabled and _Current.state.strict):
        return
    found = violations(model.input_shape, params, model.name)
    if found:
        raise StrictRequestError(report="; ".join(found))


# ---------------------------------------------------------------- install


def install(session: botocore.session.Session) -> None:
    """Register the layer's hooks on one botocore session (and so on its clients)."""
    session.register("before-parameter-build", _strict)
    session.register("provide-client-params.cloudwatch.GetMetricData", _round_start)
    session.register("before-send", _check_expiry)
    session.register("after-call", _reorder)
    session.register("after-call.cloudwatch.GetMetricData", _delay_metrics)
    session.register("after-call.sts.AssumeRole", _note_issued)
    session.register("after-call.sts.AssumeRoleWithWebIdentity", _note_issued)


_ORIGINAL_INIT = botocore.session.Session.__init__


def _init_with_realism(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
    _ORIGINAL_INIT(self, *args, **kwargs)
    install(self)


def patch_sessions() -> Callable[[], None]:
    """Give every botocore session made from now on the layer; returns the undo."""
    botocore.session.Session.__init__ = _init_with_realism  # type: ignore[method-assign]

    def undo() -> None:
        botocore.session.Session.__init__ = _ORIGINAL_INIT  # type: ignore[method-assign]

    return undo


# ---------------------------------------------------------------- atomic DynamoDB writes


class AtomicDynamoMotoServer(ThreadedMotoServer):
    """moto's threaded server with DynamoDB requests handled one at a time.

    DynamoDB applies a conditional write and a transaction atomically: of two conditional
    updates of one item, exactly one succeeds
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalUpdate).
    moto checks the condition and writes in two steps without a lock, so two threads can
    both pass. Serialising its DynamoDB requests gives the documented behaviour; other
    services stay concurrent.
    """

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def atomic_dynamodb(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
                return app(environ, start_response)  # type: ignore[no-any-return]
            with lock:
                return list(app(environ, start_response))

        self._server = make_server(
            self._ip_address, self._port, atomic_dynamodb, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()
