"""Deterministic Lambda deployment packages: the same source tree gives the same zip bytes.

A package is a zip of every regular file under a source directory, with

- entries sorted by their POSIX path relative to the source directory,
- every timestamp fixed at 1980-01-01 00:00:00 (the zip format's epoch),
- fixed permissions (0644 for files, 0755 for files that are executable by their owner),
- no directory entries, no ``__pycache__`` folders, no ``*.pyc`` files, no symlinks to
  directories (symlinked files are stored as the file they point to),
- DEFLATE compression at a fixed level.

So ``sha256(package)`` identifies the code: publishing an unchanged tree twice yields the
same digest, which is what lets the runtime (and AWS) recognise "nothing changed".
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import zipfile
from pathlib import Path

from pipeline.core.errors import UsageError

EPOCH = (1980, 1, 1, 0, 0, 0)
EXCLUDED_DIRS = frozenset({"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
_FILE_MODE = 0o100644
_EXEC_MODE = 0o100755


def package_files(source: Path) -> list[tuple[str, Path]]:
    """The files a package of ``source`` holds, as (archive name, path), sorted by name."""
    if not source.is_dir():
        raise UsageError(
            f"cannot package {source}: it is not a directory",
            hint="point the Lambda service's source at the folder holding its handler module",
        )
    found: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if d not in EXCLUDED_DIRS]
        for name in files:
            path = Path(root, name)
            if name.endswith(EXCLUDED_SUFFIXES) or not path.is_file():
                continue
            found.append((path.relative_to(source).as_posix(), path))
    found.sort(key=lambda item: item[0])
    return found


def package_directory(source: Path) -> bytes:
    """The deterministic zip of ``source`` (see the module docstring), as bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, path in package_files(source):
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so external_attr carries POSIX permissions
            executable = path.stat().st_mode & stat.S_IXUSR
            info.external_attr = (_EXEC_MODE if executable else _FILE_MODE) << 16
            archive.writestr(info, path.read_bytes(), compresslevel=6)
    return buffer.getvalue()


def write_package(source: Path, dest: Path) -> str:
    """Write the package of ``source`` to ``dest``; return its sha256 (hex). Idempotent."""
    data = package_directory(source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(dest)
    return sha256_hex(data)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extract_package(data: bytes, dest: Path) -> None:
    """Unpack a package into ``dest`` (which must not exist yet), refusing unsafe paths.

    Raises UsageError when ``data`` is not a zip, or names a file outside ``dest``.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise UsageError(
            f"cannot publish the package: it is not a zip file ({exc})",
            hint="build it with pipeline.local.lambda_package.write_package or `zip -r`",
        ) from exc
    dest.mkdir(parents=True)
    root = dest.resolve()
    try:
        with archive:
            for info in archive.infolist():
                _extract_member(archive, info, root)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path) -> None:
    target = (root / info.filename).resolve()
    if not target.is_relative_to(root):
        raise UsageError(
            f"cannot publish the package: entry {info.filename!r} points outside the package",
            hint="rebuild the zip from a plain directory tree",
        )
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(info) as src, target.open("wb") as out:
        shutil.copyfileobj(src, out)
    mode = (info.external_attr >> 16) & 0o777
    target.chmod(mode or 0o644)
