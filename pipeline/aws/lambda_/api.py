"""The Lambda API, one method per use case, returning domain values (never response dicts).

Shared by the compute, the alias router, the metrics and the bootstrap. Every call goes
through ``pipeline.aws.errors.aws_errors`` so failures arrive as ``pipeline.core.errors`` classes. Lookups of
things that may legitimately be absent (an alias, a provisioned-concurrency config)
return None instead of raising.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from pipeline.aws.errors import aws_errors
from pipeline.aws.lambda_.package import Package, ZipPackage
from pipeline.core.errors import TransientPlatformError

__all__ = [
    "AliasState",
    "Conflict",
    "FunctionSettings",
    "FunctionVersion",
    "InvokeResult",
    "LambdaApi",
    "error_code",
    "is_not_found",
]

IAM_ACTIONS: frozenset[str] = frozenset(
    {
        "lambda:GetFunctionConfiguration",
        "lambda:ListVersionsByFunction",
        "lambda:UpdateFunctionCode",
        "lambda:UpdateFunctionConfiguration",
        "lambda:PublishVersion",
        "lambda:GetAlias",
        "lambda:CreateAlias",
        "lambda:UpdateAlias",
        "lambda:InvokeFunction",
    }
)


def error_code(exc: ClientError) -> str:
    """The AWS error code of ``exc``, or the HTTP status when the answer carried none."""
    code = str(exc.response.get("Error", {}).get("Code", "") or "")
    return code or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def is_not_found(exc: ClientError) -> bool:
    return error_code(exc) in ("ResourceNotFoundException", "NotFoundException", "NoSuchEntity")


# https://docs.aws.amazon.com/lambda/latest/api/API_PublishVersion.html#API_PublishVersion_Errors,
# API_UpdateAlias.html#API_UpdateAlias_Errors: 412 when RevisionId is stale, 409 while the
# function (or the alias) is being updated.
CONFLICTS = frozenset({"PreconditionFailedException", "ResourceConflictException"})


class Conflict(TransientPlatformError):
    """Lambda refused a write because the resource changed or is still being updated."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, hint="another update of the function is in progress; the step is retried")
        self.code = code


def _revision(revision_id: str) -> dict[str, str]:
    return {"RevisionId": revision_id} if revision_id else {}


def _raise_conflict(exc: ClientError, doing: str) -> None:
    code = error_code(exc)
    if code in CONFLICTS:
        text = str(exc.response.get("Error", {}).get("Message", "") or "no message")
        raise Conflict(f"could not {doing}: AWS answered {code}: {text}", code=code) from exc


ACTIVE_TRACING = {"Mode": "Active"}
"""Lambda samples requests and records its own segments in X-Ray (initialisation, invocation),
continuing an incoming ``X-Amzn-Trace-Id``; the execution role needs ``xray:PutTraceSegments``
and ``xray:PutTelemetryRecords`` (docs/observability.md). Not part of ``settings_key``: moto
does not store a TracingConfig update, so comparing it would re-update every deployment."""


@dataclass(frozen=True, slots=True)
class FunctionSettings:
    """The configuration a release's version must carry (memory MiB, timeout seconds), with
    X-Ray active tracing (``ACTIVE_TRACING``)."""

    handler: str
    runtime: str
    memory: int
    timeout: int
    role_arn: str
    environment: tuple[tuple[str, str], ...] = ()
    package_type: Literal["zip", "image"] = "zip"

    def to_api(self) -> dict[str, Any]:
        """The ``UpdateFunctionConfiguration`` parameters (handler/runtime only for zips)."""
        params: dict[str, Any] = {
            "MemorySize": self.memory,
            "Timeout": self.timeout,
            "Role": self.role_arn,
            "Environment": {"Variables": dict(self.environment)},
            "TracingConfig": ACTIVE_TRACING,
        }
        if self.package_type == "zip":
            params.update(Handler=self.handler, Runtime=self.runtime)
        return params


@dataclass(frozen=True, slots=True)
class FunctionVersion:
    """A function version (or ``$LATEST``) as Lambda reports it."""

    version: str
    code_sha256: str
    description: str
    state: str
    last_update_status: str
    last_update_reason: str
    settings_key: tuple[object, ...]
    revision_id: str = ""  # changes with every update; PublishVersion refuses a stale one

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> FunctionVersion:
        env = data.get("Environment", {}).get("Variables", {}) or {}
        key = (
            data.get("Handler") or "", data.get("Runtime") or "", int(data.get("MemorySize", 0)),
            int(data.get("Timeout", 0)), data.get("Role", ""), tuple(sorted(env.items())),
        )
        return cls(
            version=str(data["Version"]),
            code_sha256=str(data.get("CodeSha256", "")),
            description=str(data.get("Description", "") or ""),
            state=str(data.get("State", "Active") or "Active"),
            last_update_status=str(data.get("LastUpdateStatus", "") or ""),
            last_update_reason=str(data.get("LastUpdateStatusReason", "") or ""),
            settings_key=key,
            revision_id=str(data.get("RevisionId", "") or ""),
        )

    def carries(self, settings: FunctionSettings) -> bool:
        """True when this version has ``settings`` (handler/runtime only matter for zips)."""
        wanted = FunctionVersion.from_api({"Version": "", **settings.to_api()}).settings_key
        if settings.package_type == "image":
            return self.settings_key[2:] == wanted[2:]
        return self.settings_key == wanted


@dataclass(frozen=True, slots=True)
class AliasState:
    """An alias: its primary version, at most one extra version with a weight 0..1."""

    name: str
    version: str
    weights: tuple[tuple[str, float], ...]
    description: str
    revision_id: str = ""  # UpdateAlias refuses a stale one (PreconditionFailedException)


@dataclass(frozen=True, slots=True)
class InvokeResult:
    status: int
    function_error: str
    payload: bytes


class LambdaApi:
    """Calls on one function. ``client`` is a boto3 Lambda client."""

    def __init__(self, client: Any, function: str) -> None:
        self.client = client
        self.function = function

    def latest(self) -> FunctionVersion:
        with aws_errors(f"read the configuration of function {self.function}"):
            data = self.client.get_function_configuration(FunctionName=self.function)
        return FunctionVersion.from_api(data)

    def version(self, version: str) -> FunctionVersion:
        with aws_errors(f"read version {version} of function {self.function}"):
            data = self.client.get_function_configuration(FunctionName=self.function, Qualifier=version)
        return FunctionVersion.from_api(data)

    def versions(self) -> list[FunctionVersion]:
        """Published versions, oldest first (``$LATEST`` excluded)."""
        found: list[FunctionVersion] = []
        kwargs: dict[str, Any] = {"FunctionName": self.function}
        while True:
            with aws_errors(f"list the versions of function {self.function}"):
                page = self.client.list_versions_by_function(**kwargs)
            listed = page.get("Versions", [])
            found += [FunctionVersion.from_api(v) for v in listed if v["Version"] != "$LATEST"]
            if not page.get("NextMarker"):
                return sorted(found, key=lambda v: int(v.version))
            kwargs["Marker"] = page["NextMarker"]

    def update_code(
        self, package: Package, staged: tuple[str, str] | None = None, revision_id: str = ""
    ) -> FunctionVersion:
        """Replace ``$LATEST``'s code with ``package``; ``staged``: the zip's copy in S3
        (bucket, key), for zips over the direct-upload limit. ``revision_id``: only if
        ``$LATEST`` is still as read (else, or while an update runs, ``Conflict``)."""
        code: dict[str, Any] = (
            {"ImageUri": package.image_uri} if not isinstance(package, ZipPackage)
            else {"S3Bucket": staged[0], "S3Key": staged[1]} if staged
            else {"ZipFile": package.data}
        )
        doing = f"update the code of function {self.function}"
        try:
            data = self.client.update_function_code(
                FunctionName=self.function, **code, **_revision(revision_id)
            )
        except ClientError as exc:
            _raise_conflict(exc, doing)
            with aws_errors(doing):
                raise
        return FunctionVersion.from_api(data)

    def update_settings(self, settings: FunctionSettings, revision_id: str = "") -> None:
        """Give ``$LATEST`` ``settings`` (``Conflict`` as ``update_code``)."""
        doing = f"update the configuration of function {self.function}"
        try:
            self.client.update_function_configuration(
                FunctionName=self.function, **settings.to_api(), **_revision(revision_id)
            )
        except ClientError as exc:
            _raise_conflict(exc, doing)
            with aws_errors(doing):
                raise

    def publish(self, code_sha256: str, description: str, revision_id: str = "") -> FunctionVersion:
        """Publish ``$LATEST``; Lambda refuses if its code is no longer ``code_sha256`` or,
        with ``revision_id``, if ``$LATEST`` changed since it was read
        (``PreconditionFailedException``), and while an update is in progress
        (``ResourceConflictException``): both raise ``Conflict``."""
        params: dict[str, Any] = {
            "FunctionName": self.function, "CodeSha256": code_sha256, "Description": description[:256]
        }
        if revision_id:
            params["RevisionId"] = revision_id
        try:
            data = self.client.publish_version(**params)
        except ClientError as exc:
            _raise_conflict(exc, f"publish a version of function {self.function}")
            with aws_errors(f"publish a version of function {self.function}"):
                raise
        return FunctionVersion.from_api(data)

    def alias(self, name: str) -> AliasState | None:
        try:
            data = self.client.get_alias(FunctionName=self.function, Name=name)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            with aws_errors(f"read alias {name} of function {self.function}"):
                raise
        weights = (data.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return AliasState(
            name=name,
            version=str(data["FunctionVersion"]),
            weights=tuple(sorted((str(k), float(v)) for k, v in weights.items())),
            description=str(data.get("Description", "") or ""),
            revision_id=str(data.get("RevisionId", "") or ""),
        )

    def point_alias(
        self,
        name: str,
        version: str,
        weights: dict[str, float] | None = None,
        description: str = "",
        revision_id: str = "",
    ) -> None:
        """Create or update alias ``name``: primary ``version``, ``weights`` (None = none).

        ``revision_id`` (the alias as it was read) makes the update conditional: an alias
        changed since by someone else raises ``Conflict`` instead of being overwritten.
        """
        params: dict[str, Any] = {
            "FunctionName": self.function,
            "Name": name,
            "FunctionVersion": version,
            "Description": description[:256],
            "RoutingConfig": {"AdditionalVersionWeights": weights or {}},
        }
        try:
            self.client.update_alias(**params, **({"RevisionId": revision_id} if revision_id else {}))
            return
        except ClientError as exc:
            _raise_conflict(exc, f"update alias {name} of function {self.function}")
            if not is_not_found(exc):
                with aws_errors(f"update alias {name} of function {self.function}"):
                    raise
        with aws_errors(f"create alias {name} of function {self.function}"):
            self.client.create_alias(**params)

    def invoke(self, qualifier: str, event: object) -> InvokeResult:
        """Invoke ``qualifier`` synchronously with ``event`` as its JSON payload."""
        with aws_errors(f"invoke {self.function}:{qualifier}"):
            data = self.client.invoke(
                FunctionName=self.function,
                Qualifier=qualifier,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
        return InvokeResult(
            status=int(data.get("StatusCode", 0)),
            function_error=str(data.get("FunctionError", "") or ""),
            payload=data["Payload"].read() if "Payload" in data else b"",
        )
