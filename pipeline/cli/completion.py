"""Shell completion of service and environment names (click ``shell_complete`` callbacks).

Commands and options complete through click itself; these callbacks add the project's
services (``SERVICE`` arguments) and environments (``--env``, ``--from``, ``--to``). They
read only names, not the whole configuration: the ``environments:`` keys of
``pipeline.yaml`` and the ``name:`` of each ``services/*/service.yaml``, found from
``--root`` (or the current folder) the way every command finds its project. They are
cheap and silent: a missing or broken file completes nothing instead of printing an
error into the shell. Enable completion with the lines in ``docs/operations.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml
from click.shell_completion import CompletionItem

from pipeline.core.errors import PipelineError
from pipeline.project_root import find_root


def environment_names(root: Path) -> list[str]:
    """The environments declared in ``root/pipeline.yaml``, sorted; [] when unreadable."""
    data = _yaml(root / "pipeline.yaml")
    envs = data.get("environments") if isinstance(data, dict) else None
    return sorted(str(name) for name in envs) if isinstance(envs, dict) else []


def service_names(root: Path) -> list[str]:
    """The services under ``root/services/``: each ``service.yaml``'s ``name`` (its folder's
    name when it has none or cannot be read), sorted."""
    names = set()
    for path in sorted((root / "services").glob("*/service.yaml")):
        data = _yaml(path)
        name = data.get("name") if isinstance(data, dict) else None
        names.add(str(name) if name else path.parent.name)
    return sorted(names)


def complete_services(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return _items(service_names, ctx, incomplete)


def complete_environments(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return _items(environment_names, ctx, incomplete)


def _items(names: Callable[[Path], list[str]], ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    root = _project_root(ctx)
    if root is None:
        return []
    return [CompletionItem(name) for name in names(root) if name.startswith(incomplete)]


def _project_root(ctx: click.Context) -> Path | None:
    hint = ctx.find_root().params.get("root") or Path(".")
    try:
        return find_root(Path(hint))
    except (PipelineError, OSError):
        return None


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
