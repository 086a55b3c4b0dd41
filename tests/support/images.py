"""Real OCI archives from ``FROM scratch`` Dockerfiles with the machine's buildah (no registry
needed): used by the build tests and the ECR adapter tests."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from pipeline.build import Builder, BuildRequest, archive_path, build_image, detect_builder

CREATED = 1_700_000_000.0
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def buildah_or_skip(storage: Path) -> Builder:
    """The machine's buildah with its storage under ``storage``; skip only if it cannot run."""
    if shutil.which("buildah") is None:
        pytest.skip("buildah is not installed (apt-get install buildah); .ci/run installs it")
    probe = subprocess.run(["buildah", "--version"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"buildah cannot run here: {probe.stderr.strip()}")
    return detect_builder("buildah").with_storage(storage)


def scratch_image(
    builder: Builder,
    folder: Path,
    files: dict[str, bytes],
    *,
    service: str = "orders",
    commit: str = COMMIT,
    dockerfile: str | None = None,
) -> Path:
    """Build a ``FROM scratch`` image that COPYs ``files`` (one layer each, in order)."""
    context = folder / "context"
    context.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (context / name).write_bytes(data)
    lines = ["FROM scratch", *(f"COPY {name} /{name}" for name in files), 'CMD ["/app"]']
    (context / "Dockerfile").write_text(dockerfile or "\n".join(lines) + "\n")
    out = archive_path(folder, service, commit)
    request = BuildRequest(service, context, context / "Dockerfile", commit, CREATED, out)
    return build_image(request, builder).archive


def extract_layout(archive: Path, dest: Path) -> None:
    """Unpack a built image archive (trusted: made by the test) into an OCI layout folder.

    The "data" filter where tarfile has it; Debian 12's python3 (3.11.2) predates it.
    """
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)  # trusted archive built by the test itself
