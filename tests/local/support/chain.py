"""A chain of two Lambda functions for the local tests: ``front`` calls ``back`` through the
environment's router (``ROUTER`` in its environment) and reports whether each hop was a cold
start. Both handlers answer the keep-warm ping ``{"pipeline-keep-warm": true}`` at once;
``back`` counts the pings its environment saw."""

from __future__ import annotations

BACK = '''
import json, os

PINGS = 0

def handle(event, context):
    global PINGS
    if isinstance(event, dict) and event.get("pipeline-keep-warm") is True:
        PINGS += 1
        return {"warm": True}
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"pid": os.getpid(), "pings_seen": PINGS})}
'''

FRONT = '''
import json, os, urllib.request

def handle(event, context):
    if isinstance(event, dict) and event.get("pipeline-keep-warm") is True:
        return {"warm": True}
    with urllib.request.urlopen(os.environ["ROUTER"] + "/back/x", timeout=20) as answer:
        back_cold = answer.headers.get("X-Lambda-Cold-Start") == "1"
        back = json.loads(answer.read())
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"release": "{marker}", "back_cold": back_cold, "back": back})}
'''


def service_yaml(
    name: str, priority: int, *, env: str = "{}", extra: str = "", lambda_extra: str = ""
) -> str:
    return f"""\
name: {name}
kind: lambda
owner: dev
paths: ["services/{name}/**"]
build: {{context: services/{name}}}
lambda:
  handler: handler.handle
  route: {{path: "/{name}*", priority: {priority}}}
  environment: {env}
{lambda_extra}
deploy:
  strategy: canary
  steps: [{{set_weight: 50}}, {{pause: 0.2s}}]
  timeouts: {{ready: 30s, verify: 10s, poll: 0.1s}}
{extra}"""
