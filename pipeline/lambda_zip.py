"""The one deterministic Lambda zip builder, used by the local runtime and by AWS.

The same function folder gives the same bytes on both platforms, so a version's
``sha256`` (and Lambda's ``CodeSha256``) identifies the code wherever it runs:

- files are collected by :func:`function_files`, skipping :data:`DEFAULT_EXCLUDES` (a glob
  matches any path component, so ``tests`` skips every ``tests`` folder); symlinked files
  are stored as the file they point to, symlinked folders are not followed;
- entries are sorted by their POSIX path relative to the folder, with no directory entries;
- every timestamp is 1980-01-01 00:00:00 (the zip format's epoch);
- permissions are 0644, or 0755 for a file its owner may execute (the mode bits, never
  who runs the build);
- DEFLATE at level 6.
"""

from __future__ import annotations

import fnmatch
import io
import os
import stat
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.core.errors import UsageError

__all__ = ["DEFAULT_EXCLUDES", "EPOCH", "deterministic_zip", "function_files", "package_directory"]

EPOCH = (1980, 1, 1, 0, 0, 0)
DEFAULT_EXCLUDES: tuple[str, ...] = (
    "__pycache__", "*.pyc", "*.pyo", ".git", ".DS_Store", ".pytest_cache", ".mypy_cache",
    ".ruff_cache", ".venv", "*.egg-info", "tests", "Dockerfile", "service.yaml",
)
_FILE_MODE = 0o100644
_EXEC_MODE = 0o100755


def _excluded(parts: Sequence[str], excludes: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in excludes)


def function_files(root: Path, excludes: Sequence[str] = DEFAULT_EXCLUDES) -> dict[str, Path]:
    """Files under ``root`` by archive name (POSIX, relative), skipping ``excludes`` globs.

    Raises UsageError when ``root`` is not a folder.
    """
    if not root.is_dir():
        raise UsageError(
            f"cannot package the Lambda function: {root} is not a folder",
            hint="set build.context in service.yaml to the folder holding the handler",
        )
    files: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).parts
        dirnames[:] = sorted(d for d in dirnames if not _excluded((*rel, d), excludes))
        for name in filenames:
            if _excluded((*rel, name), excludes):
                continue
            path = Path(dirpath, name)
            if path.is_file():  # skips dangling symlinks, sockets, fifos
                files["/".join((*rel, name))] = path
    return files


def deterministic_zip(files: Iterable[tuple[str, Path]]) -> bytes:
    """A zip of ``(archive name, file)`` pairs that depends only on names, contents and
    the owner's execute bit."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, path in sorted(files):
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            executable = path.stat().st_mode & stat.S_IXUSR
            info.external_attr = (_EXEC_MODE if executable else _FILE_MODE) << 16
            info.create_system = 3  # Unix, so external_attr carries POSIX permissions
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=6)
    return buffer.getvalue()


def package_directory(source: Path, excludes: Sequence[str] = DEFAULT_EXCLUDES) -> bytes:
    """The deterministic zip of the function folder ``source``."""
    return deterministic_zip(function_files(source, excludes).items())
