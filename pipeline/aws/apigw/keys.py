"""``ApiGatewayKeys``: the ``ApiKeys`` port on API Gateway's own API keys.

- ``create``: ``CreateApiKey`` with a secret of 40 random URL-safe characters (API
  Gateway takes at least 20), returned once in the ``IssuedKey`` and stored nowhere by
  the toolkit (its first four characters are the key's ``hint`` tag), then ``CreateUsagePlanKey`` on the
  plan's usage plan; if binding fails, the unbound key is disabled again, so no key works
  that no plan throttles (it lists as revoked).
- ``list``: ``GetApiKeys`` with ``nameQuery`` ``<service>-<env>-`` and
  ``includeValues=False``, kept to the keys tagged with the service and environment; the
  key's name, plan and hint (first four characters) are its tags. API Gateway matches
  ``nameQuery`` as a name prefix, which its reference does not say
  (aws/aws-sdk-java-v2#1732; validated on AWS in getmoto/moto#8220): the tags decide.
- ``revoke``: ``UpdateApiKey`` ``/enabled`` false. API Gateway refuses a disabled key at
  once, and the key stays listed (revoked, with the time) for the record; deleting it is
  an operator's choice in the console or CLI (``aws apigateway delete-api-key``).
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from pipeline.aws.apigw.rest import PAGE, RestApi
from pipeline.aws.apigw.spec import EdgeSpec
from pipeline.aws.errors import aws_errors
from pipeline.aws.session import AwsSession
from pipeline.core.edge import ApiKey, IssuedKey, hint_of, valid_key_name
from pipeline.core.errors import NotFoundError, UsageError

__all__ = ["ApiGatewayKeys"]

IAM_ACTIONS: frozenset[str] = frozenset({"apigateway:GET", "apigateway:POST", "apigateway:PATCH"})
TAG_KEY, TAG_PLAN, TAG_HINT = "pipeline:key", "pipeline:plan", "pipeline:hint"


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value or 0)


class ApiGatewayKeys:
    """Keys of the services' REST APIs in one environment; ``spec_of(service)`` is the
    service's ``EdgeSpec`` (UsageError when it has no ``api:`` block)."""

    def __init__(self, session: AwsSession, spec_of: Callable[[str], EdgeSpec]) -> None:
        self.client: Any = session.client("apigateway")
        self.spec_of = spec_of

    def create(self, service: str, name: str, plan: str | None) -> IssuedKey:
        spec = self.spec_of(service)
        chosen = self._plan(spec, name, plan)
        if any(key.name == name for key in self.list(service)):
            raise UsageError(
                f"{service} already has a key named {name!r}",
                hint="choose another --name, or revoke the old key first and use a new name",
            )
        found = RestApi(self.client, spec).usage_plans().get(spec.usage_plan_name(chosen))
        if found is None:
            raise NotFoundError(
                f"the usage plan {spec.usage_plan_name(chosen)} does not exist",
                hint=f"run `pipeline bootstrap --env {spec.environment} {service}` first",
            )
        secret = secrets.token_urlsafe(30)
        with aws_errors(f"create the API key {name} of {spec.name}"):
            data = self.client.create_api_key(
                name=f"{spec.name}-{name}",
                enabled=True,
                value=secret,
                description=f"{service} in {spec.environment}, plan {chosen}",
                tags={**spec.tags, TAG_KEY: name, TAG_PLAN: chosen, TAG_HINT: hint_of(secret)},
            )
        key_id = str(data["id"])
        try:
            with aws_errors(f"add the API key {name} to the usage plan {chosen}"):
                self.client.create_usage_plan_key(usagePlanId=found.plan_id, keyId=key_id, keyType="API_KEY")
        except Exception:
            self._disable(spec, key_id, name)
            raise
        key = ApiKey(name, key_id, chosen, _epoch(data.get("createdDate")), None, hint_of(secret))
        return IssuedKey(key, secret)

    def list(self, service: str) -> builtins.list[ApiKey]:
        spec = self.spec_of(service)
        keys = [self._key(item) for item in self._items(spec) if _ours(item, spec)]
        return sorted(keys, key=lambda k: (k.created, k.name))

    def revoke(self, service: str, name: str) -> ApiKey:
        spec = self.spec_of(service)
        item = next((i for i in self._items(spec) if _ours(i, spec) and i["tags"][TAG_KEY] == name), None)
        if item is None:
            raise NotFoundError(
                f"{service} has no key named {name!r} in {spec.environment}",
                hint=f"see `pipeline keys list {service} --env {spec.environment}`",
            )
        if not item.get("enabled", True):
            return self._key(item)
        updated = self._disable(spec, str(item["id"]), name)
        return self._key({**item, **updated, "tags": item["tags"]})

    def _disable(self, spec: EdgeSpec, key_id: str, name: str) -> dict[str, Any]:
        with aws_errors(f"disable the API key {name} of {spec.name}"):
            return dict(
                self.client.update_api_key(
                    apiKey=key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}]
                )
            )

    # --- helpers -------------------------------------------------------------------------

    def _plan(self, spec: EdgeSpec, name: str, plan: str | None) -> str:
        if not valid_key_name(name):
            raise UsageError(f"bad key name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
        if spec.api.keys == "none":
            raise UsageError(
                f"{spec.service} takes no API keys (api.keys is none)",
                hint="set api.keys: required in its service.yaml, then bootstrap again",
            )
        chosen = plan or spec.api.default_plan
        if chosen is None or chosen not in spec.api.plans:
            known = ", ".join(sorted(spec.api.plans)) or "none defined"
            raise UsageError(
                f"{spec.service} has no usage plan {chosen!r} (plans: {known})",
                hint="pass --plan with one of its plans, or set api.default_plan",
            )
        return chosen

    def _items(self, spec: EdgeSpec) -> Iterator[dict[str, Any]]:
        position: str | None = None
        while True:
            with aws_errors(f"list the API keys of {spec.name}"):
                page = self.client.get_api_keys(
                    nameQuery=f"{spec.name}-",
                    includeValues=False,
                    limit=PAGE,
                    **({"position": position} if position else {}),
                )
            yield from page.get("items", [])
            position = page.get("position")
            if not position:
                return

    @staticmethod
    def _key(item: dict[str, Any]) -> ApiKey:
        tags = item.get("tags") or {}
        revoked = None if item.get("enabled", True) else _epoch(item.get("lastUpdatedDate"))
        return ApiKey(
            str(tags.get(TAG_KEY, item.get("name", ""))),
            str(item["id"]),
            tags.get(TAG_PLAN),
            _epoch(item.get("createdDate")),
            revoked,
            str(tags.get(TAG_HINT, "")),
        )


def _ours(item: dict[str, Any], spec: EdgeSpec) -> bool:
    tags = item.get("tags") or {}
    return bool(
        tags.get("pipeline:service") == spec.service
        and tags.get("pipeline:environment") == spec.environment
        and TAG_KEY in tags
    )
