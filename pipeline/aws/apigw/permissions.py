"""The IAM actions of a service's ``api:`` edge on API Gateway, and where they apply.

API Gateway's IAM actions are the HTTP methods of its management API (``apigateway:GET``,
``POST``, ``PUT``, ``PATCH``, ``DELETE``) on resource ARNs such as
``arn:aws:apigateway:REGION::/restapis/ID/...``
(https://docs.aws.amazon.com/apigateway/latest/developerguide/permissions.html).

- ``DEPLOY_ACTIONS``: what a deployment calls: find the REST API (``GET``) and flush its
  stage cache (``DELETE`` on ``.../stages/live/cache/data`` only);
- ``BOOTSTRAP_ACTIONS``: what ``pipeline bootstrap`` and ``pipeline keys`` call: create
  and converge the REST API, its resources, methods, integrations, stage, usage plans and
  keys (``POST``/``PUT``/``PATCH``), the VPC link of ECS services, the function's invoke
  permission (``lambda:GetPolicy``/``AddPermission``, scoped by the Lambda adapters).

API ids are chosen by API Gateway, so the grants name the REST API, usage-plan, API-key
and VPC-link paths of the region rather than one id; ``DELETE`` is granted on the cache
of stages called ``live`` only.
"""

from __future__ import annotations

from pipeline.aws.apigw import bootstrap, cache, keys, rest, vpc_link
from pipeline.aws.apigw.spec import STAGE

DEPLOY_ACTIONS: frozenset[str] = cache.IAM_ACTIONS
BOOTSTRAP_ACTIONS: frozenset[str] = (
    rest.IAM_ACTIONS | bootstrap.IAM_ACTIONS | vpc_link.IAM_ACTIONS | keys.IAM_ACTIONS
)
IAM_ACTIONS: frozenset[str] = DEPLOY_ACTIONS | BOOTSTRAP_ACTIONS

_COLLECTIONS = ("/restapis", "/usageplans", "/apikeys", "/vpclinks", "/tags")  # tags: created with them


def iam_resources(action: str, *, partition: str, region: str) -> list[str]:
    """The ARNs ``action`` (``apigateway:<METHOD>``) needs for the edge ([]: not an edge action)."""
    prefix, _, method = action.partition(":")
    base = f"arn:{partition}:apigateway:{region}::"
    if prefix != "apigateway":
        return []
    if method == "DELETE":
        return [f"{base}/restapis/*/stages/{STAGE}/cache/data"]
    return [f"{base}{c}{suffix}" for c in _COLLECTIONS for suffix in ("", "/*")]
