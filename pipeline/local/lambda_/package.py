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

__all__ = ["MAX_RATIO", "MAX_UNPACKED", "extract_package", "package_directory", "sha256_hex", "write_package"]

MAX_UNPACKED = 250 * 1000 * 1000  # bytes: AWS Lambda's limit for a function's unzipped code
MAX_RATIO = 100  # unpacked / packed bytes above this (and above 1 MB unpacked) is a zip bomb
MAX_ENTRIES = 20_000
_SMALL = 1000 * 1000


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

    Raises UsageError when ``data`` is not a zip, names a file outside ``dest``, or would
    unpack to more than ``MAX_UNPACKED`` bytes or ``MAX_RATIO`` times its size (checked on
    the entries' declared sizes before anything is written, and on the bytes written).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise UsageError(
            f"cannot publish the package: it is not a zip file ({exc})",
            hint="build it with pipeline.local.lambda_.package.write_package or `zip -r`",
        ) from exc
    _check_size(archive, len(data))
    dest.mkdir(parents=True)
    root = dest.resolve()
    budget = [MAX_UNPACKED]
    try:
        with archive:
            for info in archive.infolist():
                _extract_member(archive, info, root, budget)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _check_size(archive: zipfile.ZipFile, packed: int) -> None:
    entries = archive.infolist()
    unpacked = sum(info.file_size for info in entries)
    why = ""
    if len(entries) > MAX_ENTRIES:
        why = f"it has {len(entries)} entries (at most {MAX_ENTRIES})"
    elif unpacked > MAX_UNPACKED:
        why = f"it unpacks to {unpacked:,} bytes (at most {MAX_UNPACKED:,}, as on AWS Lambda)"
    elif unpacked > _SMALL and unpacked > MAX_RATIO * max(packed, 1):
        why = (f"it unpacks to {unpacked:,} bytes from {packed:,} ({unpacked // max(packed, 1)}x, "
               f"at most {MAX_RATIO}x): a zip bomb")
    if why:
        raise UsageError(f"cannot publish the package: {why}",
                         hint="package only the function's code and its dependencies")


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path, budget: list[int]) -> None:
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
        while chunk := src.read(1 << 20):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise UsageError(
                    f"cannot publish the package: it unpacks to more than {MAX_UNPACKED:,} bytes",
                    hint="package only the function's code and its dependencies")
            out.write(chunk)
    mode = (info.external_attr >> 16) & 0o777
    target.chmod(mode or 0o644)
