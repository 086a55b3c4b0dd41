"""Every ``pipeline ...`` command in a workflow ``run:`` step parses against the real CLI."""

from __future__ import annotations

import click
import pytest

from pipeline.cli.main import cli
from tests.workflows.support.commands import argv_of, parse, pipeline_commands
from tests.workflows.support.files import run_scripts

COMMANDS = sorted(
    {(file.name, command) for file, _, script in run_scripts() for command in pipeline_commands(script)}
)


def test_the_workflows_call_the_commands_of_the_contract() -> None:
    called = {tuple(parse(cli, argv_of(command))) for _, command in COMMANDS}
    assert {
        ("changes",), ("test",), ("push",), ("deploy",), ("promote",), ("loadtest",), ("handoff",),
        ("rollback",), ("abort",), ("continue",), ("approval", "github-pr"), ("approval", "github-run"),
        ("deployment-status",),
    } <= called


@pytest.mark.parametrize(("file", "command"), COMMANDS, ids=[f"{f}: {c[:70]}" for f, c in COMMANDS])
def test_workflow_command_parses_against_the_cli(file: str, command: str) -> None:
    try:
        parse(cli, argv_of(command))
    except click.ClickException as exc:
        pytest.fail(f"{file}: `{command}` does not parse: {exc.format_message()}")


def test_a_misspelt_option_does_not_parse() -> None:
    with pytest.raises(click.UsageError, match="--envv"):
        parse(cli, argv_of('pipeline deploy "$SERVICE" --envv dev'))


def test_an_unknown_command_does_not_parse() -> None:
    with pytest.raises(click.UsageError):
        parse(cli, argv_of("pipeline deplyo orders --env dev"))
