"""A small valid project for the load-test commands (unit and local tiers): a local
environment ``dev`` (router port 8100), an AWS environment ``cloud`` without a URL, a
service ``orders`` with a ``load:`` section and a service ``bare`` without one."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROJECT = """\
project: lt
organisations: {dev: {}}
environments:
  dev: {platform: local, owner: dev, local: {port: 8100}}
  cloud:
    platform: aws
    owner: dev
    aws:
      region: eu-west-1
      account: "123456789012"
      cluster: c
      listener_arn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/x/1/2
      test_listener_arn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/x/1/3
      state_table: t
      vpc_id: vpc-1
      subnets: [subnet-1]
      security_groups: [sg-1]
      ecr_registry: 123456789012.dkr.ecr.eu-west-1.amazonaws.com
"""

SERVICE = """\
name: {name}
kind: ecs
owner: dev
paths: [services/{name}/**]
build: {{context: services/{name}}}
local: {{command: python -m app}}
ecs: {{container: {name}, port: 8080, route: {{path: "/{name}*", priority: {priority}}}}}
{load}
"""

ORDERS_LOAD = """\
load:
  locustfile: loadtests/orders.py
  users: 4
  spawn_rate: 4
  duration: 3s
  user_class: OrdersUser
  thresholds: {fail_ratio: 0.01, p95_ms: 500}
"""


def write_project(root: Path) -> Path:
    """A valid project in ``root`` with the real orders locustfile and its helpers."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pipeline.yaml").write_text(PROJECT)
    for name, priority, load in (("orders", 10, ORDERS_LOAD), ("bare", 20, "")):
        folder = root / "services" / name
        folder.mkdir(parents=True)
        (folder / "service.yaml").write_text(SERVICE.format(name=name, priority=priority, load=load))
    shutil.copytree(REPO / "loadtests", root / "loadtests", ignore=shutil.ignore_patterns("__pycache__"))
    return root
