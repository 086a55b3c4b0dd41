"""``pipeline test SERVICE``: run the service's own unit tests (``test.command``).

The command line of ``service.yaml``'s ``test.command`` is split like a shell would
(``shlex.split``) and run without a shell from the project root, with ``test.env`` added
to the environment. Its output streams straight through (the child inherits stdout and
stderr). Exit codes: 0 when the tests pass, 6 when they fail (the message names the
command and its exit status), 2 when the service has no test command or the program
does not exist.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path

import click

from pipeline.app import App
from pipeline.console.render import err, styled
from pipeline.core.errors import Cancelled, ConfigError, DeploymentFailed, UsageError


@click.command(name="test")
@click.argument("service")
@click.pass_obj
def test(app: App, service: str) -> None:
    """Run SERVICE's unit tests (test.command of its service.yaml) from the project root."""
    config = app.project.service(service)
    where = f"services/{service}/service.yaml"
    if config.test is None:
        raise UsageError(
            f"{service} has no unit tests to run: {where} has no `test:` section",
            hint="add `test: {command: ...}`, e.g. `python -m pytest -q services/NAME/tests`",
        )
    argv = split_command(config.test.command, where)
    err.print(f"testing {service}: {shlex.join(argv)}", markup=False, soft_wrap=True)
    status = run_command(argv, app.root, config.test.env, where)
    if status != 0:
        raise DeploymentFailed(
            f"unit tests of {service} failed: `{shlex.join(argv)}` exited with status {status}",
            hint="the test output above says which tests failed",
        )
    err.print(styled("passed", "green", f": unit tests of {service}"))


def split_command(command: str, where: str) -> list[str]:
    """``command`` as an argument vector; ConfigError (at ``where``) if it cannot be split."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError([f"{where}: test.command: cannot split {command!r}: {exc}"]) from exc
    if not argv:
        raise ConfigError([f"{where}: test.command: the command is empty"])
    return argv


def run_command(argv: list[str], cwd: Path, extra_env: Mapping[str, str], where: str) -> int:
    """Run ``argv`` in ``cwd`` without a shell, output streamed; its exit status.

    A status of -N (killed by signal N) is returned as 128+N, as shells report it.
    """
    env = {**os.environ, **extra_env}
    try:
        process = subprocess.Popen(argv, cwd=cwd, env=env)
    except FileNotFoundError as exc:
        raise ConfigError(
            [f"{where}: test.command: program {argv[0]!r} was not found (PATH and {cwd})"],
            hint="install it, or fix test.command; the command runs from the project root without a shell",
        ) from exc
    except PermissionError as exc:
        raise ConfigError([f"{where}: test.command: {argv[0]!r} is not executable: {exc.strerror}"]) from exc
    try:
        status = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
        raise Cancelled(f"unit tests interrupted: `{shlex.join(argv)}` was stopped") from None
    return 128 - status if status < 0 else status
