"""``pipeline ...`` command lines of workflow ``run:`` scripts, parsed by the real click CLI.

Variables (``"$SERVICE"``) become sample values first: the check is that every option and
argument a workflow passes exists and has a valid shape, without running anything.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import click

# Sample values for variables whose option has a type or a fixed set of choices.
SAMPLES = {"PR": "7", "RUN_ID": "42", "STATE": "success", "ENVIRONMENT": "dev"}
DEFAULT_SAMPLE = "sample"


def pipeline_commands(script: str) -> Iterator[str]:
    """Each ``pipeline ...`` command of a script (continuation lines joined)."""
    joined = script.replace("\\\n", " ")
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped.startswith("pipeline "):
            yield stripped


def argv_of(command: str) -> list[str]:
    """The command's arguments after ``pipeline``, variables replaced by sample values."""
    words = shlex.split(command, comments=True)
    assert words[0] == "pipeline"
    return [re.sub(r"\$\{?(\w+)\}?", lambda m: SAMPLES.get(m.group(1), DEFAULT_SAMPLE), w) for w in words[1:]]


def parse(group: click.Group, argv: list[str]) -> list[str]:
    """Parse ``argv`` as click would, down to the leaf command; returns the command path.

    ``make_context`` parses and validates options and arguments without invoking callbacks.
    Raises ``click.UsageError`` (or a subclass) when something does not parse.
    """
    try:
        ctx = group.make_context("pipeline", list(argv), resilient_parsing=False)
    except click.exceptions.Exit as exc:  # an eager option such as --version ends parsing
        if exc.exit_code != 0:
            raise click.UsageError(f"pipeline {' '.join(argv)} exits with {exc.exit_code}") from exc
        return []
    path: list[str] = []
    command: click.Command = group
    while isinstance(command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]  # click keeps the subcommand here
        if not rest:
            raise click.UsageError(f"missing a command after {' '.join(['pipeline', *path])}")
        name, sub, remaining = command.resolve_command(ctx, rest)
        if sub is None or name is None:
            raise click.UsageError(f"no such command: {rest[0]}")
        path.append(name)
        ctx = sub.make_context(name, remaining, parent=ctx)
        command = sub
    return path
