"""The declared keys of a service's ``api:`` edge as bootstrap steps.

A plan's ``keys: [acme, globex]`` names keys that ``pipeline bootstrap`` issues: one
``api key`` step per declared name, after the usage plans. A missing key is created on its
plan by ``ApiGatewayKeys.create`` (``CreateApiKey`` + ``CreateUsagePlanKey``) and its secret
handed to ``reveal`` once, the only time anything sees it: the toolkit stores it nowhere.

An existing key is left as it is (a second bootstrap writes nothing), and so is every key
``pipeline keys create`` made that no plan declares. A declared key that exists but is
disabled (revoked) is reported, not re-enabled: revoking is a decision, and a revoked
secret must not come back to life; declare a new name to issue a replacement. A declared
key on another plan than the one declaring it is reported too (API Gateway keeps a key
on the plans it was bound to).
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.aws.apigw.keys import ApiGatewayKeys
from pipeline.aws.apigw.spec import EdgeSpec
from pipeline.aws.bootstrap import BootstrapStep
from pipeline.aws.session import AwsSession
from pipeline.core.edge import ApiKey, IssuedKey

__all__ = ["Reveal", "declared_key_steps"]

Reveal = Callable[[IssuedKey], None]
"""Takes the secret of a key bootstrap just created: shown once, stored nowhere."""


def declared_key_steps(session: AwsSession, spec: EdgeSpec, reveal: Reveal) -> list[BootstrapStep]:
    """One ``api key`` step per declared key of ``spec`` (reads only: ``GetApiKeys``)."""
    declared = spec.api.declared_keys
    if spec.api.keys == "none" or not declared:
        return []
    keys = ApiGatewayKeys(session, lambda _: spec)
    found = {key.name: key for key in keys.list(spec.service)}
    out: list[BootstrapStep] = []
    for name, plan in declared.items():
        have = found.get(name)
        label = f"{spec.name}-{name}"
        if have is None:
            out.append(BootstrapStep("api key", label, False, _issue(keys, spec, name, plan, reveal),
                                     f"plan {plan}, secret shown once"))
        else:
            out.append(BootstrapStep("api key", f"{label}{_remark(have, plan)}", True))
    return out


def _remark(key: ApiKey, plan: str) -> str:
    """What bootstrap leaves for a person to decide about an existing declared key."""
    if not key.active:
        return " (disabled: revoked keys stay revoked; declare a new name for a replacement)"
    if key.plan != plan:
        return f" (on plan {key.plan}, declared on {plan}: revoke it and declare a new name)"
    return ""


def _issue(keys: ApiGatewayKeys, spec: EdgeSpec, name: str, plan: str, reveal: Reveal) -> Callable[[], None]:
    def create() -> None:
        reveal(keys.create(spec.service, name, plan))

    return create
