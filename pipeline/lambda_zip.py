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

A release's function is packaged from the release's *commit*, never from the working
tree: :func:`commit_tree` extracts the function's folder as ``git archive`` stores it at
that commit (the same snapshot the local platform runs), so uncommitted edits cannot
leak into a deployed version. :func:`check_size` refuses a package over Lambda's limits
before any upload.
"""

from __future__ import annotations

import fnmatch
import io
import os
import stat
import subprocess
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.core.errors import PipelineError, UsageError

__all__ = [
    "DEFAULT_EXCLUDES",
    "DIRECT_UPLOAD_MAX",
    "EPOCH",
    "UNZIPPED_MAX",
    "check_size",
    "commit_tree",
    "deterministic_zip",
    "function_files",
    "package_directory",
    "unzipped_size",
]

# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html: a zip uploaded
# directly is at most 50 MB; unzipped, the function and its layers at most 250 MB.
DIRECT_UPLOAD_MAX = 50 * 1024 * 1024
UNZIPPED_MAX = 250 * 1024 * 1024

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


def _git(folder: Path, *args: str) -> bytes:
    try:
        command = ["git", "-C", str(folder), *args]
        done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PipelineError(
            f"git {args[0]} in {folder} failed: {exc}", hint="check that git is installed"
        ) from exc
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise PipelineError(
            f"git {' '.join(args[:2])} in {folder} failed: {why[-1] if why else 'no message'}",
            hint="the release's commit must be in this clone (CI: actions/checkout with fetch-depth: 0, "
            "or check out the release's commit)",
        )
    return done.stdout


def commit_tree(folder: Path, commit: str, dest: Path) -> Path:
    """The tree of ``folder`` as committed at ``commit``, extracted under ``dest``.

    ``folder`` is inside a git work tree; the result is ``dest/<folder relative to the
    repository's top>``. Only regular files and folders are extracted (a symlink is
    skipped: a function is packaged from what the commit holds). PipelineError when
    ``commit`` is empty, unknown here, or does not have ``folder``.
    """
    if not commit:
        raise PipelineError(
            f"cannot package {folder} from the release's commit: the release names no commit",
            hint="deploy a release built from a commit (its image tag or --ref names one)",
        )
    top = Path(_git(folder, "rev-parse", "--show-toplevel").decode().strip())
    relative = folder.resolve().relative_to(top.resolve()).as_posix()
    archive = _git(top, "archive", "--format=tar", commit, "--", relative)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise PipelineError(f"unsafe path {member.name!r} in the archive of {commit[:12]}")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                target.write_bytes(source.read() if source is not None else b"")
                target.chmod(0o755 if member.mode & stat.S_IXUSR else 0o644)
    tree = dest / relative
    if not tree.is_dir():
        raise PipelineError(
            f"commit {commit[:12]} has no folder {relative}: nothing to package",
            hint="check build.context in service.yaml, and that the release's commit has the function",
        )
    return tree


def unzipped_size(data: bytes) -> int:
    """Bytes the zip ``data`` takes once extracted (its entries' uncompressed sizes)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return sum(info.file_size for info in archive.infolist())


def check_size(data: bytes, *, what: str, staged: bool) -> None:
    """PipelineError when the zip ``data`` exceeds Lambda's limits (``staged``: it goes
    through S3, where only the unzipped limit applies)."""
    mib = 1024 * 1024
    unzipped = unzipped_size(data)
    if unzipped > UNZIPPED_MAX:
        raise PipelineError(
            f"{what} is {unzipped / mib:.1f} MiB unzipped: Lambda allows {UNZIPPED_MAX // mib} MiB "
            "(function and layers together)",
            hint="drop unneeded dependencies, move large ones to a layer, or package the function as a "
            "container image (lambda.package: image, up to 10 GB)",
        )
    if not staged and len(data) > DIRECT_UPLOAD_MAX:
        raise PipelineError(
            f"{what} is {len(data) / mib:.1f} MiB zipped: a direct upload allows "
            f"{DIRECT_UPLOAD_MAX // mib} MiB",
            hint="run `pipeline bootstrap` for the environment: it creates the bucket larger packages "
            "are staged in",
        )
