"""Configuration that YAML accepts but means something else, reported at its own line.

Names match whole (``"prod\\n"`` is not ``prod``); two merge keys in one mapping; a YAML
1.1 boolean used as a key (``on:``), reported at the key's line and path rather than the
mapping's; numbers too large for any setting, in our words rather than Python's.
Every problem is asserted as ``file:line: key.path: message``.
"""

from __future__ import annotations

import json

import pytest

from pipeline.config import load_project
from pipeline.config.source import MAX_DIGITS, parse_yaml
from pipeline.core.errors import ConfigError
from tests.unit.support.project import WriteProject

PIPELINE = """
    project: shop
    organisations:
      dev: {members: [alice]}
    environments:
      dev: {platform: local, owner: dev, local: {port: 8100}}
    """

ORDERS = """
    name: orders
    kind: ecs
    owner: dev
    paths: [services/orders/**]
    build: {context: services/orders}
    local: {command: python -m app, replicas: 2}
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
SERVICE = "services/orders/service.yaml"
LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/s/1"


def problems_of(write_project: WriteProject, orders: str, pipeline: str = PIPELINE) -> list[str]:
    root = write_project(pipeline, {"orders": orders})
    with pytest.raises(ConfigError) as info:
        load_project(root)
    return info.value.problems


def test_the_example_below_loads() -> None:
    """The fixtures themselves are valid: each test breaks exactly one thing."""
    assert parse_yaml(SERVICE, ORDERS).problems == ()


# --- names match whole -------------------------------------------------------------------


def test_a_name_with_a_trailing_newline_is_not_a_name(write_project: WriteProject) -> None:
    pipeline = PIPELINE.replace("      dev: {platform", '      "dev\\n": {platform')
    found = problems_of(write_project, ORDERS, pipeline)
    start = "pipeline.yaml:5: environments.dev\n"
    named = [p for p in found if p.startswith(start) and "is not a valid name" in p]
    assert named, found


def test_a_service_name_with_a_trailing_newline_is_refused(write_project: WriteProject) -> None:
    found = problems_of(write_project, ORDERS.replace("name: orders", 'name: "orders\\n"'))
    assert any(p.startswith(f"{SERVICE}:1: name: ") and "is not a valid name" in p for p in found), found


@pytest.mark.parametrize(
    "field",
    ['region: "eu-west-1\\n"', 'vpc_id: "vpc-0abc\\n"'],
)
def test_aws_ids_with_a_trailing_newline_are_refused(write_project: WriteProject, field: str) -> None:
    pipeline = PIPELINE.replace(
        "      dev: {platform: local, owner: dev, local: {port: 8100}}",
        "      dev: {platform: local, owner: dev, local: {port: 8100}}\n"
        "      cloud:\n"
        "        platform: aws\n"
        "        owner: dev\n"
        "        aws:\n"
        "          region: eu-west-1\n"
        '          account: "123456789012"\n'
        "          cluster: shop\n"
        f"          listener_arn: {LISTENER}/2\n"
        f"          test_listener_arn: {LISTENER}/3\n"
        "          state_table: pipeline-state\n"
        f"          {field}\n",
    )
    key = field.split(":", 1)[0]
    found = problems_of(write_project, ORDERS, pipeline)
    assert [p for p in found if f"environments.cloud.aws.{key}:" in p and "is not " in p], found


# --- merge keys --------------------------------------------------------------------------


def test_two_merge_keys_in_one_mapping_are_reported_at_the_second(write_project: WriteProject) -> None:
    orders = ORDERS.replace(
        "    ecs:\n      container: orders\n",
        "    ecs:\n      container: orders\n      <<: {port: 8080}\n      <<: {desired_count: 2}\n",
    )
    assert problems_of(write_project, orders) == [
        f"{SERVICE}:10: ecs.<<: a second merge key (<<) in this mapping (the first is at line 9): "
        "YAML allows one; merge several mappings with one key, e.g. `<<: [*first, *second]`"
    ]


def test_one_merge_key_with_a_list_is_fine() -> None:
    text = "a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n  z: 3\n"
    document = parse_yaml("f.yaml", text)
    assert document.problems == ()
    assert document.data["c"] == {"x": 1, "y": 2, "z": 3}


# --- booleans as keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "meaning"), [("on", "true"), ("yes", "true"), ("off", "false"), ("No", "false")]
)
def test_a_yaml_boolean_used_as_a_key_is_reported_at_its_own_line_and_path(
    write_project: WriteProject, word: str, meaning: str
) -> None:
    orders = ORDERS.replace("      port: 8080\n", f"      port: 8080\n      {word}: 1\n")
    found = problems_of(write_project, orders)
    assert found[0] == (
        f"{SERVICE}:10: ecs.{word}: the key {word} is read by YAML 1.1 as the boolean {meaning}, "
        f'not as the word: quote it ("{word}") if you mean the word'
    )
    assert all(p.startswith(f"{SERVICE}:10: ecs.{word}: ") for p in found), found  # never the mapping's line


def test_a_boolean_key_in_a_map_of_variables_is_reported_too(write_project: WriteProject) -> None:
    orders = ORDERS.replace("      port: 8080\n", "      port: 8080\n      environment:\n        ON: '1'\n")
    found = problems_of(write_project, orders)
    assert found == [
        f"{SERVICE}:11: ecs.environment.ON: the key ON is read by YAML 1.1 as the boolean true, "
        'not as the word: quote it ("ON") if you mean the word'
    ]


def test_a_quoted_word_is_a_key() -> None:
    document = parse_yaml("f.yaml", 'top:\n  "on": push\n  \'yes\': 1\n')
    assert document.problems == ()
    assert document.data == {"top": {"on": "push", "yes": 1}}


# --- numbers too large -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("9" * 5000, "a number 5000 characters long is too large for any setting"),
        ("0x" + "f" * 5000, "a number 5002 characters long is too large for any setting"),
        ("1.0e+400", "'1.0e+400' (beyond the largest number, about 1.8e308) is too large for any setting"),
    ],
    ids=["decimal", "hexadecimal", "float-overflow"],
)
def test_a_huge_number_gets_our_message_at_its_line(
    write_project: WriteProject, value: str, message: str
) -> None:
    found = problems_of(write_project, ORDERS.replace("replicas: 2", f"replicas: {value}"))
    assert found == [f"{SERVICE}:6: local.replicas: {message}: use a value in the setting's range"]
    assert not any("sys.set_int_max_str_digits" in p or "4300" in p for p in found)


def test_1e400_is_text_to_yaml_and_not_an_integer(write_project: WriteProject) -> None:
    found = problems_of(write_project, ORDERS.replace("replicas: 2", "replicas: 1e400"))
    assert found == [f"{SERVICE}:6: local.replicas: must be a valid integer, got '1e400'"]


def test_a_long_number_within_the_limit_is_still_a_number() -> None:
    document = parse_yaml("f.yaml", f"n: {'1' * MAX_DIGITS}\nf: .inf\n")
    assert document.problems == ()
    assert len(str(document.data["n"])) == MAX_DIGITS
    assert document.data["f"] == float("inf")


def test_a_huge_number_in_json_flow_style_is_caught_too() -> None:
    document = parse_yaml("f.yaml", json.dumps({"a": {"b": [1, int("9" * 2000)]}}))
    assert [str(p) for p in document.problems] == [
        "f.yaml:1: a.b[1]: a number 2000 characters long is too large for any setting: "
        "use a value in the setting's range"
    ]
