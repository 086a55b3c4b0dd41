"""Machine-readable outputs for CI: ``--github-output`` writes ``key=value`` lines to the
file named by ``$GITHUB_OUTPUT`` (GitHub Actions' step outputs).

Values are flattened to one line each: strings as they are, booleans as ``true``/``false``,
numbers with ``str()``, lists and mappings as compact JSON. A value holding a newline is
written with GitHub's heredoc form (``key<<DELIM``) so it cannot inject other outputs.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from pipeline.core.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])

github_output_option: Callable[[F], F] = click.option(
    "--github-output",
    is_flag=True,
    help="Also write the result's values as step outputs to $GITHUB_OUTPUT (GitHub Actions).",
)


def flat(value: object) -> str:
    """One output value as text: ``true``/``false``, numbers, JSON for lists and mappings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"), sort_keys=isinstance(value, dict))
    return str(value)


def write_github_output(values: Mapping[str, object], *, path: str | None = None) -> None:
    """Append ``values`` to ``$GITHUB_OUTPUT`` (or ``path``); UsageError when it is not set."""
    target = path or os.environ.get("GITHUB_OUTPUT")
    if not target:
        raise UsageError(
            "--github-output needs $GITHUB_OUTPUT, which GitHub Actions sets in every step",
            hint="drop --github-output outside GitHub Actions, or set GITHUB_OUTPUT=FILE",
        )
    lines: list[str] = []
    for key, value in values.items():
        text = flat(value)
        if "\n" in text or "\r" in text:
            delim = f"ghadelim_{secrets.token_hex(8)}"
            lines.append(f"{key}<<{delim}\n{text}\n{delim}\n")
        else:
            lines.append(f"{key}={text}\n")
    with Path(target).open("a", encoding="utf-8") as fh:
        fh.write("".join(lines))
