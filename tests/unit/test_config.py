"""pipeline.config: models, line-accurate problems, cross-file checks, strategies, schema."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from pipeline.config import (
    Defaults,
    ProjectConfig,
    ServiceConfig,
    json_schema,
    load_project,
    parse_duration,
    strategy_for,
)
from pipeline.config.source import parse_yaml
from pipeline.core.analysis import AnalysisSpec, Check
from pipeline.core.errors import ConfigError, NotFoundError
from pipeline.core.state import Timeouts
from pipeline.core.steps import Analyze, LoadStage, Pause, SetWeight, TestStage
from tests.unit.support.project import REPO_ROOT, WriteProject

PIPELINE = """
    project: shop
    organisations:
      dev: {members: [alice]}
      ops: {}
    environments:
      dev: {platform: local, owner: dev, auto_deploy: true, local: {port: 8100}}
      prod:
        platform: local
        owner: ops
        requires: {approval: ops, passed: [dev]}
        local: {port: 8300}
    """

ORDERS = """
    name: orders
    kind: ecs
    owner: dev
    paths: [services/orders/**]
    build: {context: services/orders}
    local: {command: python -m app}
    ecs:
      container: orders
      port: 8080
      route: {path: /orders*, priority: 10}
    deploy:
      strategy: canary
      steps:
        - set_weight: 20
        - analyze: {}
    """

NOTIFY = """
    name: notify
    kind: lambda
    owner: dev
    paths: [services/notify/**]
    build: {context: services/notify}
    lambda:
      handler: handler.handle
      route: {path: /notify*, priority: 30}
    """


def problems(root: Path) -> list[str]:
    """The problems ``load_project(root)`` reports (fails if it loads)."""
    with pytest.raises(ConfigError) as info:
        load_project(root)
    return info.value.problems


def only_problem(root: Path) -> str:
    found = problems(root)
    assert len(found) == 1, found
    return found[0]


# --- the example project ------------------------------------------------------------------


def test_example_project_in_the_repo_loads_cleanly() -> None:
    project = load_project(REPO_ROOT)

    assert sorted(project.services) == ["catalog", "notify", "orders"]
    environments = ["aws-dev", "aws-prod", "aws-staging", "dev", "prod", "staging"]
    assert sorted(project.config.environments) == environments
    assert project.environment("aws-staging").requires.passed == ("aws-dev",)
    assert project.environment("aws-prod").aws is not None
    assert project.environment("prod").requires.approval == "ops"
    assert project.service("notify").lambda_ is not None


def test_strategy_for_expands_the_orders_canary_of_the_example() -> None:
    strategy = strategy_for(load_project(REPO_ROOT), "orders")

    assert strategy.steps == (
        TestStage(),
        SetWeight(10),
        Pause(30.0),
        Analyze(),
        LoadStage(),
        SetWeight(50),
        Pause(30.0),
        Analyze(),
    )
    assert strategy.analysis == AnalysisSpec(
        checks=(Check("error_rate", 0.01), Check("p95_ms", 500.0)),
        min_requests=20,
        window_seconds=60.0,
        interval_seconds=10.0,
        max_error_rate_increase=0.01,
        failure_limit=0,
        inconclusive_limit=2,
        consecutive_error_limit=2,
    )
    # ready from the service, the rest from pipeline.yaml defaults
    assert strategy.timeouts == Timeouts(ready=120.0, verify=60.0, stage=900.0, hold=86400.0, poll=2.0)
    assert strategy.keep_previous == 0.0


def test_example_blue_green_and_linear_services_expand_to_their_steps() -> None:
    project = load_project(REPO_ROOT)

    catalog = project.strategy("catalog")
    assert catalog.steps == (TestStage(), LoadStage(), SetWeight(100), Pause(30.0), Analyze())
    assert catalog.keep_previous == 300.0
    notify = project.strategy("notify").steps
    assert [s.percent for s in notify if isinstance(s, SetWeight)] == [25, 50, 75, 100]


# --- every problem at once, with file and line ----------------------------------------------


def test_reports_every_mistake_of_every_file_at_once_with_its_line(write_project: WriteProject) -> None:
    root = write_project(
        """
        project: shop
        organisations:
          dev: {members: [alice]}
          ops: {}
        environments:
          dev:
            platform: local
            owner: dev
            colour: blue
            local: {port: 8100}
          prod:
            platform: local
            owner: sre
            local: {port: 8300}
        """,
        {
            "orders": """
                name: orders
                kind: ecs
                owner: qa
                paths: [services/orders/**]
                build: {context: services/orders}
                local: {command: python -m app}
                ecs:
                  container: orders
                  port: 8080
                  route: {path: /orders*, priority: 10}
                deploy:
                  strategy: canary
                  steps:
                    - set_weight: 150
                    - pause: 5 minutes
                    - analyze: {}
                """,
            "billing": None,
            "notify": """
                name: notify
                kind: lambda
                owner: dev
                paths: [services/notify/**]
                build: {context: services/notify}
                lambda:
                  route: {path: /notify*, priority: 30}
                """,
        },
    )

    assert problems(root) == [
        "pipeline.yaml:9: environments.dev.colour: unknown key 'colour': "
        "allowed here: platform, owner, access, auto_deploy, requires, local, aws, analysis, max_pause, "
        "observability, notify",
        "pipeline.yaml:13: environments.prod.owner: unknown organisation 'sre': organisations in "
        "pipeline.yaml are dev, ops; use one of them or add it under `organisations:`",
        "services/billing/service.yaml:1: file not found: every folder in services/ is a service and "
        "needs a service.yaml; add one, or rename the folder to start with '_' if it is not a service",
        "services/notify/service.yaml:6: lambda.handler: required key is missing: add it",
        "services/orders/service.yaml:3: owner: unknown organisation 'qa': organisations in "
        "pipeline.yaml are dev, ops; use one of them or add it under `organisations:`",
        "services/orders/service.yaml:14: deploy.steps[0].set_weight: "
        "must be less than or equal to 100, got 150",
        "services/orders/service.yaml:15: deploy.steps[1].pause: "
        "bad duration '5 minutes': use 500ms, 30s, 5m or 1h (or 1h30m; a plain number means seconds)",
    ]


def test_a_missing_key_points_at_the_mapping_it_is_missing_from(write_project: WriteProject) -> None:
    root = write_project(
        """
        project: shop
        organisations: {dev: {}}
        environments:
          dev:
            platform: local
            local:
              state_dir: .state
        """
    )

    assert problems(root) == [
        "pipeline.yaml:4: environments.dev.owner: required key is missing: add it",
        "pipeline.yaml:6: environments.dev.local.port: required key is missing: add it",
    ]


def test_an_unknown_key_suggests_the_closest_allowed_key(write_project: WriteProject) -> None:
    root = write_project(PIPELINE, {"orders": ORDERS.replace("- analyze: {}", "- analyse: {}")})

    assert only_problem(root) == (
        "services/orders/service.yaml:15: deploy.steps[1].analyse: unknown key 'analyse': "
        "did you mean 'analyze'? allowed here: set_weight, pause, analyze, load, test, approve"
    )


def test_a_rule_between_keys_is_reported_alongside_field_errors(write_project: WriteProject) -> None:
    service = NOTIFY.replace("kind: lambda", "kind: ecs").replace("owner: dev", "owner: dev\n    local: 3")

    assert problems(write_project(PIPELINE, {"notify": service})) == [
        "services/notify/service.yaml:1: ecs: kind ecs requires `ecs:`, which is missing: add it",
        "services/notify/service.yaml:4: local: must be a mapping of keys to values (key: value), got 3",
        "services/notify/service.yaml:7: lambda: `lambda:` does not apply to kind ecs: remove it, "
        "or change `kind`",
    ]


@pytest.mark.parametrize(
    ("deploy", "expected"),
    [
        (
            "deploy: {strategy: linear}",
            "deploy.linear: strategy linear requires `linear:`, which is missing: add it",
        ),
        (
            "deploy: {strategy: blue-green, steps: [{analyze: {}}]}",
            "deploy.steps: `steps:` does not apply to strategy blue-green: remove it, or change `strategy`",
        ),
        (
            "deploy: {strategy: canary, steps: [{set_weight: 10, pause: 5s}]}",
            "deploy.steps[0]: a step has exactly one key, this one has set_weight, pause: "
            "put each in its own list item",
        ),
        (
            "deploy: {strategy: canary, steps: [{test: 1}]}",
            "deploy.steps[0].test: this step takes no options: write `{}` after the colon",
        ),
        (
            "deploy: {strategy: canary, steps: [{load: {}}]}",
            "load: deploy runs a load stage but there is no `load:` section: "
            "add one (locustfile, users, ...) or remove the load stage from deploy",
        ),
        (
            "deploy: {analysis: {checks: [{metric: error_rate, max: 5}]}}",
            "deploy.analysis.checks[0].max: error_rate is a fraction of requests, 5 is more than all of "
            "them: use a value from 0 to 1 (0.01 = 1%)",
        ),
        (
            "deploy: {timeouts: {ready: 0s}}",
            "deploy.timeouts.ready: 0s is out of range: must be longer than 0s",
        ),
    ],
)
def test_deploy_section_mistakes_are_explained(
    write_project: WriteProject, deploy: str, expected: str
) -> None:
    service = NOTIFY + deploy + "\n"

    problem = only_problem(write_project(PIPELINE, {"notify": service}))

    assert problem.split(": ", 1)[1] == expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("port: 8080", "memory: 100", "ecs.memory: must be greater than or equal to 512, got 100"),
        (
            "port: 8080",
            "memory: 4096",
            "ecs.memory: memory 4096 MiB does not fit cpu 256: Fargate allows 512, 1024, 2048 MiB",
        ),
        ("port: 8080", "port: '8080'", "ecs.port: must be a valid integer, got '8080'"),
        (
            "port: 8080",
            "secrets: {DB_PASSWORD: hunter2}",
            "ecs.secrets.DB_PASSWORD: 'hunter2' is not the ARN of an SSM parameter or a Secrets Manager "
            "secret (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME or "
            "arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)",
        ),
        (
            "port: 8080",
            "health_check: {interval: 5s, timeout: 5s}",
            "ecs.health_check.timeout: timeout 5s must be shorter than interval 5s: "
            "lower it or raise the interval",
        ),
    ],
)
def test_ecs_settings_are_validated(write_project: WriteProject, old: str, new: str, expected: str) -> None:
    replacement = new if new.startswith("port") else f"{old}\n      {new}"
    service = ORDERS.replace(old, replacement)

    problem = only_problem(write_project(PIPELINE, {"orders": service}))

    assert problem.split(": ", 1)[1] == expected


# --- references across names and files ----------------------------------------------------


def test_environment_requirements_must_exist_and_not_form_cycles(write_project: WriteProject) -> None:
    root = write_project(
        """
        project: shop
        organisations: {dev: {}}
        environments:
          a: {platform: local, owner: dev, local: {port: 8100}, requires: {passed: [b, nowhere]}}
          b: {platform: local, owner: dev, local: {port: 8100}, requires: {passed: [a], approval: qa}}
          c: {platform: local, owner: dev, local: {port: 8300}, requires: {passed: [c]}}
        """
    )

    assert problems(root) == [
        "pipeline.yaml:4: environments.a.requires.passed[1]: unknown environment 'nowhere': "
        "environments are a, b, c; use one of them",
        "pipeline.yaml:4: environments.a.requires.passed: requires.passed forms a cycle between a, b: "
        "no release could ever reach them; remove one of the requirements",
        "pipeline.yaml:5: environments.b.requires.approval: unknown organisation 'qa': organisations in "
        "pipeline.yaml are dev; use one of them or add it under `organisations:`",
        "pipeline.yaml:5: environments.b.local.port: port 8100 is also used by environment a: "
        "give each local environment its own port",
        "pipeline.yaml:6: environments.c.requires.passed[0]: environment c requires itself, so no "
        "release could ever reach it: remove it from its own requires.passed",
    ]


def test_service_name_must_match_its_folder_and_routes_must_be_unique(write_project: WriteProject) -> None:
    other = ORDERS.replace("name: orders", "name: order")
    root = write_project(PIPELINE, {"orders": ORDERS, "shipping": other})

    assert problems(root) == [
        "services/shipping/service.yaml:1: name: name 'order' does not match its folder services/shipping: "
        "rename one so that they agree",
        "services/shipping/service.yaml:10: ecs.route.path: route path '/orders*' is also used by "
        "services/orders/service.yaml: each service needs its own; pick another",
        "services/shipping/service.yaml:10: ecs.route.priority: route priority 10 is also used by "
        "services/orders/service.yaml: each service needs its own; pick another",
    ]


def test_ecs_services_need_a_local_command_when_local_environments_exist(write_project: WriteProject) -> None:
    root = write_project(PIPELINE, {"orders": ORDERS.replace("    local: {command: python -m app}\n", "")})

    assert only_problem(root).startswith(
        "services/orders/service.yaml:1: local: environments dev, prod run on"
    )


def test_folders_starting_with_underscore_or_dot_are_not_services(write_project: WriteProject) -> None:
    root = write_project(PIPELINE, {"_shared": None, ".cache": None, "orders": ORDERS})

    assert list(load_project(root).services) == ["orders"]


# --- any input: a Project or a ConfigError, nothing else ---------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "pipeline.yaml:1: file is empty: it needs the keys project, organisations, environments"),
        (b"# only a comment\n", "pipeline.yaml:1: file is empty: it needs the keys project, organisations"),
        (b"- a\n- b\n", "pipeline.yaml:1: the top level must be a mapping of keys to values"),
        (b"just text", "pipeline.yaml:1: the top level must be a mapping of keys to values"),
        (b"project: shop\n\xff\xfe\x00junk", "pipeline.yaml:2: not UTF-8 text (byte 0xff)"),
        (b"project: [shop\nenvironments: x\n", "pipeline.yaml:2: invalid YAML"),
        (b"a: 1\n\tb: 2\n", "pipeline.yaml:2: invalid YAML"),
        (b"a: \x00\n", "pipeline.yaml:1: invalid YAML: unacceptable character"),
        (
            b"a: 1\n---\nb: 2\n",
            "pipeline.yaml:2: invalid YAML: expected a single document in the stream, but found another",
        ),
        (
            b"a: !!python/object:os.system x\n",
            "pipeline.yaml:1: invalid YAML: could not determine a constructor",
        ),
        (b"a: " + b"9" * 5000 + b"\n", "pipeline.yaml:1: a: a number 5000 characters long is too large"),
        (b"a: " + b"[" * 3000 + b"]" * 3000, "pipeline.yaml:1: invalid YAML: nested too deeply"),
        (b"project: a\nproject: b\n", "pipeline.yaml:2: project: duplicate key (first at line 1)"),
    ],
)
def test_unreadable_files_become_problems(write_project: WriteProject, content: bytes, expected: str) -> None:
    root = write_project(None)
    (root / "pipeline.yaml").write_bytes(content)

    assert any(p.startswith(expected) for p in problems(root)), problems(root)


def test_a_missing_pipeline_yaml_is_a_problem(tmp_path: Path) -> None:
    assert only_problem(tmp_path).startswith("pipeline.yaml:1: file not found")


def test_alias_bombs_and_self_references_do_not_hang_or_crash() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6)
    )
    assert "expands to more than" in str(parse_yaml("f.yaml", bomb).problems[0])
    loop = parse_yaml("f.yaml", "a: &a [*a]\n")
    assert not loop.problems


def test_self_referencing_yaml_is_reported_not_raised(write_project: WriteProject) -> None:
    root = write_project("project: &p [*p]\norganisations: &o {x: *o}\nenvironments: {}\n")

    assert problems(root)


def test_dates_stay_text_and_do_not_crash(write_project: WriteProject) -> None:
    root = write_project(PIPELINE.replace("project: shop", "project: 2024-13-45"))

    assert only_problem(root).startswith("pipeline.yaml:1: project: '2024-13-45' is not a valid name")


# --- lookups ----------------------------------------------------------------------------------


def test_unknown_service_and_environment_name_the_known_ones(write_project: WriteProject) -> None:
    project = load_project(write_project(PIPELINE, {"orders": ORDERS, "notify": NOTIFY}))

    with pytest.raises(NotFoundError) as service:
        project.service("billing")
    with pytest.raises(NotFoundError) as env:
        project.environment("qa")

    assert service.value.hint == "known services: notify, orders"
    assert env.value.hint == "known environments: dev, prod"


def test_models_are_frozen(write_project: WriteProject) -> None:
    project = load_project(write_project(PIPELINE, {"orders": ORDERS}))

    with pytest.raises(ValidationError):
        project.service("orders").name = "other"  # type: ignore[misc]


# --- strategies -------------------------------------------------------------------------------


def _service(**deploy: Any) -> ServiceConfig:
    data: dict[str, Any] = {
        "name": "orders",
        "kind": "lambda",
        "owner": "dev",
        "paths": ["x/**"],
        "build": {"context": "x"},
        "lambda": {"handler": "h.h", "route": {"path": "/x", "priority": 1}},
        "deploy": deploy,
    }
    return ServiceConfig.model_validate(data)


def test_blue_green_without_options_tests_switches_and_analyses() -> None:
    assert _service().strategy().steps == (TestStage(), SetWeight(100), Analyze())


def test_canary_pauses_without_duration_wait_for_continue() -> None:
    steps = [{"set_weight": 10}, {"pause": {}}, {"pause": None}, {"pause": "1m30s"}, {"approve": {}}]

    strategy = _service(strategy="canary", steps=steps).strategy()

    assert strategy.steps[1:4] == (SetWeight(10), Pause(None), Pause(None))
    assert strategy.steps[4] == Pause(90.0)


def test_linear_raises_weight_by_its_increment() -> None:
    strategy = _service(strategy="linear", linear={"increment": 50, "interval": "10s", "analyze": False})

    assert strategy.strategy().steps == (TestStage(), SetWeight(50), Pause(10.0), SetWeight(100))


def test_timeouts_merge_core_defaults_project_defaults_and_service_overrides() -> None:
    defaults = Defaults.model_validate({"timeouts": {"ready": "10m", "poll": "1s"}})

    timeouts = _service(timeouts={"poll": "500ms"}).strategy(defaults).timeouts

    assert timeouts == Timeouts(ready=600.0, verify=60.0, stage=900.0, hold=86400.0, poll=0.5)


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (30, 30.0),
        (1.5, 1.5),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("2s250ms", 2.25),
        (" 10s ", 10.0),
    ],
)
def test_parse_duration_accepts_numbers_and_unit_strings(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 minutes", "bad duration '5 minutes': use 500ms, 30s, 5m or 1h"),
        ("30", "bad duration '30': a quoted number has no unit; write 30s"),
        ("", "bad duration '': use 500ms"),
        ("30m1h", "bad duration '30m1h': use 500ms"),
        ("1d", "bad duration '1d': use 500ms"),
        ("-5s", "bad duration '-5s': use 500ms"),
        (-5, "bad duration -5: a duration cannot be negative"),
        (float("nan"), "bad duration nan: must be a finite number of seconds"),
        (float("inf"), "bad duration inf: must be a finite number of seconds"),
        (True, "bad duration True: use 500ms"),
        (None, "bad duration None: use 500ms"),
        ([1], "bad duration [1]: use 500ms"),
        ("9" * 400 + "h", "bad duration '999"),
    ],
)
def test_parse_duration_rejects_anything_else_naming_the_value(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)

    assert str(info.value).startswith(message)


# --- schema and boundaries -------------------------------------------------------------------


def test_json_schema_describes_both_files_for_editors() -> None:
    schemas = json_schema()

    assert set(schemas) == {"pipeline.yaml", "service.yaml"}
    assert {"project", "organisations", "defaults", "environments"} <= set(
        schemas["pipeline.yaml"]["properties"]
    )
    assert "lambda" in schemas["service.yaml"]["properties"]
    assert schemas["service.yaml"]["additionalProperties"] is False
    json.dumps(schemas)


def test_config_does_not_import_cloud_sdks_or_cli_libraries() -> None:
    code = (
        "import sys, pipeline.config; "
        "print([m for m in ('boto3', 'botocore', 'click', 'rich') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"


def _keys(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """Every key of ``model`` and of the models below it."""
    if model in seen:
        return set()
    seen.add(model)
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        keys.add(info.alias or name)
        keys |= {k for sub in _models_in(info.annotation) for k in _keys(sub, seen)}
    return keys


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


@pytest.mark.parametrize("model", [ProjectConfig, ServiceConfig])
def test_the_config_reference_documents_every_key(model: type[BaseModel]) -> None:
    doc = (REPO_ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z][a-z0-9_]*)", doc))

    assert _keys(model, set()) - documented == set()
