"""Local Lambda packages: the shared deterministic zip (``pipeline.lambda_zip``) on disk,
and safe extraction of a published package into the runtime's version store.

``sha256(package)`` identifies the code: publishing an unchanged tree twice yields the
same digest, which is what lets the runtime (and AWS) recognise "nothing changed"; the
bytes are the same as the AWS platform's package of the same folder.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path

from pipeline.core.errors import UsageError
from pipeline.lambda_zip import package_directory

__all__ = ["extract_package", "package_directory", "sha256_hex", "write_package"]


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
            hint="build it with pipeline.local.lambda_.package.write_package or `zip -r`",
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
