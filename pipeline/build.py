"""Image builds through the builder installed on the machine, into an OCI archive.

``detect_builder()`` picks docker buildx, podman or buildah (in that order) from ``PATH``;
``build_image()`` builds a service's image from its context and Dockerfile, labels it
(``org.opencontainers.image.revision``, ``org.opencontainers.image.created``,
``pipeline.service``) and writes it to ``<root>/.pipeline/images/<service>/<commit>.oci.tar``.

Contracts:

- Builds are reproducible: the image's created time (the label and, through the builder's
  ``--timestamp`` / ``SOURCE_DATE_EPOCH``, every timestamp in the image) is the commit's
  time, so rebuilding a commit yields the same digest and pushing it again is a no-op.
- The archive appears atomically (written beside, then renamed): a failed build leaves
  no archive behind, and an existing archive is replaced only by a complete one.
- Detection only looks at ``PATH`` (and docker's CLI plugin folders for buildx).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import git

from pipeline.core.errors import NotFoundError, PlatformError, UsageError
from pipeline.oci import OciArchive


class BuilderName(StrEnum):
    DOCKER = "docker"
    PODMAN = "podman"
    BUILDAH = "buildah"


DETECTION_ORDER = (BuilderName.DOCKER, BuilderName.PODMAN, BuilderName.BUILDAH)
INSTALL_HINT = (
    "install one of: docker with the buildx plugin (apt-get install docker.io docker-buildx), "
    "podman (apt-get install podman) or buildah (apt-get install buildah); "
    "or choose an installed one with --builder"
)
_PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


def docker_plugin_dirs() -> tuple[Path, ...]:
    """Where the docker CLI looks for plugins such as ``docker-buildx``."""
    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    return (config / "cli-plugins", *(Path(d) for d in _PLUGIN_DIRS))


@dataclass(frozen=True, slots=True)
class Builder:
    """An installed builder. ``global_args`` go before the subcommand (storage options)."""

    name: BuilderName
    executable: str
    global_args: tuple[str, ...] = ()

    def with_storage(self, root: Path) -> Builder:
        """A podman/buildah builder keeping its images under ``root`` (tests, CI caches)."""
        if self.name is BuilderName.DOCKER:
            return self
        args = ("--root", str(root / "root"), "--runroot", str(root / "run"))
        return Builder(self.name, self.executable, (*self.global_args, *args))

    def commands(self, request: BuildRequest, dest: Path) -> list[list[str]]:
        """The command lines that build ``request`` into the OCI archive ``dest``."""
        labels = [arg for key, value in request.labels.items() for arg in ("--label", f"{key}={value}")]
        stamp = str(int(request.created))
        args = [arg for key, value in request.build_args for arg in ("--build-arg", f"{key}={value}")]
        target = ["--target", request.target] if request.target else []
        common = ["--file", str(request.dockerfile), *args, *target, *labels, "--tag", request.tag]
        base = [self.executable, *self.global_args]
        if self.name is BuilderName.DOCKER:
            buildx = [*base, "buildx", "build", "--provenance=false", *common]
            return [
                [*buildx, "--output", f"type=oci,dest={dest},rewrite-timestamp=true", str(request.context)]
            ]
        verb = "bud" if self.name is BuilderName.BUILDAH else "build"
        isolation = ["--isolation", "chroot"] if self.name is BuilderName.BUILDAH else []
        return [
            [*base, verb, *isolation, "--layers", "--timestamp", stamp, *common, str(request.context)],
            [*base, "push", request.tag, f"oci-archive:{dest}"],
        ]


def detect_builder(
    preferred: str | None = None,
    *,
    path: str | None = None,
    plugin_dirs: Sequence[Path] | None = None,
) -> Builder:
    """The preferred builder, else the first installed of docker buildx, podman, buildah.

    NotFoundError naming the options and how to install one when none (or not the
    preferred one) is installed.
    """
    candidates: tuple[BuilderName, ...] = DETECTION_ORDER
    if preferred:
        try:
            candidates = (BuilderName(preferred),)
        except ValueError as exc:
            raise NotFoundError(
                f"unknown builder {preferred!r}: choose docker, podman or buildah", hint=INSTALL_HINT
            ) from exc
    dirs = docker_plugin_dirs() if plugin_dirs is None else tuple(plugin_dirs)
    for name in candidates:
        executable = shutil.which(name.value, path=path)
        if executable and (name is not BuilderName.DOCKER or _has_buildx(dirs, path)):
            args = ("--storage-driver", "vfs") if name is BuilderName.BUILDAH else ()
            return Builder(name, executable, args)
    wanted = preferred or "docker buildx, podman or buildah"
    raise NotFoundError(
        f"no image builder found: {wanted} is not installed (searched PATH)", hint=INSTALL_HINT
    )


def _has_buildx(dirs: Sequence[Path], path: str | None) -> bool:
    if shutil.which("docker-buildx", path=path):
        return True
    return any((folder / "docker-buildx").is_file() for folder in dirs)


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """What to build. ``created`` is epoch seconds (the commit's time, for reproducibility)."""

    service: str
    context: Path
    dockerfile: Path
    commit: str
    created: float
    out: Path
    build_args: tuple[tuple[str, str], ...] = ()
    target: str | None = None

    @property
    def tag(self) -> str:
        return f"localhost/pipeline/{self.service}:{self.commit}"

    @property
    def labels(self) -> dict[str, str]:
        created = dt.datetime.fromtimestamp(self.created, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "org.opencontainers.image.revision": self.commit,
            "org.opencontainers.image.created": created,
            "pipeline.service": self.service,
        }


@dataclass(frozen=True, slots=True)
class BuildResult:
    service: str
    commit: str
    archive: Path
    digest: str
    size: int
    builder: str
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "service": self.service,
            "commit": self.commit,
            "archive": str(self.archive),
            "digest": self.digest,
            "size": self.size,
            "builder": self.builder,
            "labels": dict(self.labels),
        }


def source_revision(root: Path, context: Path | None = None) -> tuple[str, float]:
    """The HEAD commit of the git checkout holding ``root`` and its commit time (epoch seconds).

    With uncommitted or untracked changes under ``context`` (default: the whole checkout,
    ``.pipeline/`` excluded) the commit gets a ``-dirty`` suffix: such an image is not the
    commit's. UsageError outside a git checkout or before the first commit.
    """
    try:
        repo = git.Repo(root, search_parent_directories=True)
        head = repo.head.commit
        status = repo.git.status(
            "--porcelain",
            "--untracked-files=all",
            "--",
            str(context or repo.working_tree_dir),
            ":(exclude).pipeline",
        )
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError, git.GitCommandError) as exc:
        raise UsageError(
            f"cannot tell which commit to build in {root}: {exc.__class__.__name__}: {exc}",
            hint="build from a git checkout with at least one commit, or pass --commit",
        ) from exc
    suffix = "-dirty" if status.strip() else ""
    return head.hexsha + suffix, float(head.committed_date)


def archive_path(root: Path, service: str, commit: str) -> Path:
    """Where ``pipeline build`` puts a service's image for a commit."""
    return root / ".pipeline" / "images" / service / f"{commit}.oci.tar"


def build_image(
    request: BuildRequest, builder: Builder, *, log: Callable[[str], None] | None = None
) -> BuildResult:
    """Build ``request`` with ``builder``; ``log`` receives the builder's output line by line.

    PlatformError (with the builder's last lines) if the builder fails or writes no image.
    """
    for required in (request.context, request.dockerfile):
        if not required.exists():
            raise NotFoundError(
                f"cannot build {request.service}: {required} does not exist",
                hint="check build.context and build.dockerfile in the service's service.yaml",
            )
    request.out.parent.mkdir(parents=True, exist_ok=True)
    partial = request.out.with_name(request.out.name + ".partial")
    partial.unlink(missing_ok=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(int(request.created))}
    try:
        for command in builder.commands(request, partial):
            _run(command, env, log or (lambda _line: None), request.service, builder.name)
        image = OciArchive.open(partial).image()
        os.replace(partial, request.out)
    finally:
        partial.unlink(missing_ok=True)
    return BuildResult(
        request.service,
        request.commit,
        request.out,
        image.digest,
        image.size,
        builder.name.value,
        request.labels,
    )


def _run(
    command: list[str], env: dict[str, str], log: Callable[[str], None], service: str, builder: BuilderName
) -> None:
    tail: deque[str] = deque(maxlen=20)
    try:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise PlatformError(
            f"building {service} failed: cannot run {command[0]}: {exc}", hint=INSTALL_HINT
        ) from exc
    try:
        assert proc.stdout is not None  # Popen with stdout=PIPE always sets it
        for line in proc.stdout:
            tail.append(line.rstrip())
            log(line.rstrip())
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code != 0:
        shown = "\n".join(f"    {line}" for line in tail)
        raise PlatformError(
            f"building {service} with {builder} failed: "
            f"`{' '.join(command[:4])} ...` exited with {code}\n{shown}",
            hint="fix the Dockerfile or build context named above, then run `pipeline build` again",
        )
