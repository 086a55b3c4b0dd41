"""Where a project is: the one place that looks for ``pipeline.yaml`` upward.

Every command (and shell completion, the local plane commands and the demo) finds its
project the same way: the nearest folder at or above a starting folder that holds the
marker. Kept free of heavy imports so shell completion stays fast.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import NotFoundError

PROJECT_FILE = "pipeline.yaml"
SERVICES_DIR = "services"


def nearest_root(start: Path, marker: str = PROJECT_FILE) -> Path | None:
    """The nearest folder at or above ``start`` (resolved) holding ``marker``; None if none does."""
    start = Path(start).resolve()
    for folder in (start, *start.parents):
        if (folder / marker).exists():
            return folder
    return None


def find_root(start: Path, marker: str = PROJECT_FILE) -> Path:
    """``nearest_root``; with the default marker a missing project is a ``NotFoundError``,
    with another marker (``--project``: a services folder) the start folder itself."""
    found = nearest_root(start, marker)
    if found is not None:
        return found
    if marker != PROJECT_FILE:
        return Path(start).resolve()
    raise NotFoundError(
        f"no {PROJECT_FILE} in {Path(start).resolve()} or any parent folder",
        hint="run the command inside a project, or pass --root PATH",
    )
