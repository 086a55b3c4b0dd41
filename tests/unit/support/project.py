"""Where the repository is, and the type of the ``write_project`` fixture (``conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

WriteProject = Callable[..., Path]
"""``write(pipeline_yaml, {folder: service_yaml | None}) -> root``."""
