"""Deployment packages of Lambda functions: deterministic zips, or container images.

A zip is built from the function's folder *as the release's commit has it* (``git
archive``, like the local platform's snapshots; never the working tree) plus, when the folder has a
``requirements.txt``, its dependencies installed for the Lambda runtime's platform
(``pip install --target --platform manylinux2014_x86_64 --only-binary=:all:
--python-version 3.11``), by the one deterministic builder both platforms share
(``pipeline.lambda_zip``). So an unchanged function gives byte-identical bytes and the
same ``CodeSha256``, Lambda publishes no new version, and a function without
requirements has the same bytes as the local runtime's package of it.

``ImagePackage`` is the other option: a container image in ECR, always by digest.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.core.model import Release
from pipeline.lambda_zip import DEFAULT_EXCLUDES, commit_tree, deterministic_zip, function_files

__all__ = [
    "DEFAULT_EXCLUDES",
    "ImagePackage",
    "Package",
    "ZipPackage",
    "deterministic_zip",
    "function_files",
    "image_package",
    "install_requirements",
    "package_commit",
    "package_function",
]

LAMBDA_PLATFORM = "manylinux2014_x86_64"


@dataclass(frozen=True, slots=True)
class ZipPackage:
    """Zip bytes; ``code_sha256`` is what Lambda reports as ``CodeSha256`` (base64 SHA-256)."""

    data: bytes

    @property
    def sha256_hex(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha256_hex}"

    @property
    def code_sha256(self) -> str:
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()


@dataclass(frozen=True, slots=True)
class ImagePackage:
    """A container image pinned by digest: ``<registry>/<repo>@sha256:<hex>``."""

    image_uri: str


Package = ZipPackage | ImagePackage


def image_package(release: Release) -> ImagePackage:
    """The release's image, by digest (never a mutable tag)."""
    if not release.image:
        raise PipelineError(
            f"cannot deploy {release.short} as a container-image function: the release has no image",
            hint="push the image first (`pipeline push SERVICE`), or package the function as a zip",
        )
    repo = release.image.split("@", 1)[0]
    head, _, last = repo.rpartition("/")
    repo = f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]  # drop a tag, keep a port
    return ImagePackage(f"{repo}@{release.digest}")


def install_requirements(
    requirements: Path,
    target: Path,
    *,
    python_version: str = "3.11",
    platform: str = LAMBDA_PLATFORM,
    pip_args: Sequence[str] = (),
    timeout: float = 600.0,
) -> None:
    """``pip install -r requirements --target target`` for the Lambda runtime's platform.

    Only binary wheels for ``platform`` (or pure-Python ones) are accepted, so what runs on
    this machine's architecture never leaks into the package. ``pip_args`` adds options
    such as ``--no-index --find-links DIR``. Raises PipelineError with pip's output tail.
    """
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-compile", "--target", str(target), "--platform", platform,
        "--only-binary=:all:", "--implementation", "cp", "--python-version", python_version,
        "-r", str(requirements), *pip_args,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PipelineError(
            f"installing {requirements} for Lambda timed out after {timeout:g}s: pip did not finish",
            hint="check network access to the package index, or vendor the wheels (--find-links)",
        ) from exc
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise PipelineError(
            f"installing {requirements} for Lambda failed: {tail}",
            hint=f"every requirement needs a {platform} or pure-Python wheel for Python {python_version}",
        )


def package_function(
    source: Path,
    *,
    requirements: Path | None = None,
    excludes: Sequence[str] = DEFAULT_EXCLUDES,
    python_version: str = "3.11",
    pip_args: Sequence[str] = (),
) -> ZipPackage:
    """The deterministic zip of the function in ``source`` and its dependencies.

    ``requirements`` defaults to ``source/requirements.txt`` when it exists. Dependencies
    go to the zip's root next to the function's own files; the function's files win a
    name clash. Pure: same inputs, same bytes.
    """
    if not source.is_dir():
        raise PipelineError(
            f"cannot package the Lambda function: {source} is not a folder",
            hint="set build.context in service.yaml to the folder holding the handler",
        )
    if requirements is None and (source / "requirements.txt").is_file():
        requirements = source / "requirements.txt"
    files = function_files(source, excludes)
    with tempfile.TemporaryDirectory(prefix="lambda-deps-") as tmp:
        deps: dict[str, Path] = {}
        if requirements is not None:
            install_requirements(
                requirements, Path(tmp), python_version=python_version, pip_args=pip_args
            )
            deps = function_files(Path(tmp), ("__pycache__", "*.pyc", "*.pyo"))
        merged = {**deps, **files}
        return ZipPackage(deterministic_zip(merged.items()))


def package_commit(
    source: Path, commit: str, *, python_version: str = "3.11", pip_args: Sequence[str] = ()
) -> ZipPackage:
    """The zip of the function in ``source`` as ``commit`` has it (its ``requirements.txt``
    included), never the working tree's files: what a release deploys is what it was
    built from. PipelineError when the commit is unknown here or lacks the folder."""
    with tempfile.TemporaryDirectory(prefix="lambda-commit-") as tmp:
        tree = commit_tree(source, commit, Path(tmp))
        return package_function(tree, python_version=python_version, pip_args=pip_args)
