"""``pipeline validate`` warns when an AWS analysis cannot see complete CloudWatch data in time.

CloudWatch serves ALB and Lambda metrics as 60-second aggregates that land late
(https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html,
https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics.html): a window under a
minute reads a whole minute, and a pause shorter than window + metrics_lag is followed by a
longer wait for the data. Warnings never fail validation.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.config import load_project
from pipeline.config.windows import window_warnings
from tests.unit.support.project import WriteProject

LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/0123456789abcdef"
AWS_KEYS = f"""\
      region: eu-west-1
      account: "123456789012"
      cluster: shop
      listener_arn: {LISTENER}/0123456789abcdef
      test_listener_arn: {LISTENER}/fedcba9876543210
      state_table: pipeline-state
      vpc_id: vpc-0123456789abcdef0
      subnets: [subnet-0123456789abcdef0]
      security_groups: [sg-0123456789abcdef0]
      ecr_registry: 123456789012.dkr.ecr.eu-west-1.amazonaws.com
"""

PROJECT = f"""\
project: shop
organisations: {{dev: {{}}}}
environments:
  dev: {{platform: local, owner: dev, local: {{port: 18400}}}}
  aws-dev:
    platform: aws
    owner: dev
    analysis: {{metrics_lag: 90s}}
    aws:
{AWS_KEYS}"""


def service(pause: str, window: str) -> str:
    return f"""\
name: orders
kind: ecs
owner: dev
paths: [services/orders/**]
build: {{context: services/orders}}
local: {{command: python -m app}}
ecs: {{container: orders, port: 8080, route: {{path: /orders*, priority: 10}}}}
deploy:
  strategy: canary
  steps:
    - set_weight: 10
    - pause: {pause}
    - analyze: {{}}
  analysis: {{window: {window}}}
"""


def test_a_short_window_and_pause_on_aws_are_warned_about(write_project: WriteProject) -> None:
    project = load_project(write_project(PROJECT, {"orders": service("30s", "20s")}))

    messages = [str(w) for w in window_warnings(project)]

    assert len(messages) == 2
    assert messages[0].startswith("service orders on aws-dev: analysis window 20s is shorter")
    assert "set deploy.analysis.window to 60s or more" in messages[0]
    assert "step 3 pauses 30s" in messages[1] and "metrics_lag 90s" in messages[1]
    assert "needs 2.5m" in messages[1]  # one whole minute + the environment's 90 s lag


def test_the_local_platform_and_a_long_enough_pause_get_no_warning(write_project: WriteProject) -> None:
    project = load_project(write_project(PROJECT, {"orders": service("3m", "1m")}))
    assert window_warnings(project) == []


def test_the_default_lag_is_two_minutes(write_project: WriteProject) -> None:
    text = PROJECT.replace("    analysis: {metrics_lag: 90s}\n", "")
    project = load_project(write_project(text, {"orders": service("2m30s", "1m")}))
    (warning,) = window_warnings(project)
    assert "needs 3m (window 60s + metrics_lag 2m)" in warning.message


def test_validate_prints_the_warnings_and_still_succeeds(write_project: WriteProject) -> None:
    root = write_project(PROJECT, {"orders": service("30s", "1m")})

    text = CliRunner().invoke(cli, ["--root", str(root), "validate"])
    as_json = CliRunner().invoke(cli, ["--root", str(root), "validate", "--json"])

    assert text.exit_code == 0 and as_json.exit_code == 0
    assert "warning: service orders on aws-dev: step 3 pauses 30s" in text.output
    assert json.loads(as_json.stdout)["warnings"] == [
        line.removeprefix("warning: ") for line in text.output.splitlines() if line.startswith("warning: ")
    ]
