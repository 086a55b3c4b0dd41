"""The local platform's image registry: a release is a snapshot of a git commit.

``resolve(service, reference)`` turns a git reference (``HEAD``, a branch, a tag, a full or
short sha, including commits made in another worktree of the same repository) into a
``Release``. The snapshot is ``git archive --format=tar`` of the commit, so the same commit
always gives byte-identical archives and the same digest: ``sha256:`` + sha256 of the
archive. A digest (``sha256:...`` or ``local/<service>@sha256:...``) resolves to a release
stored earlier.

Layout under ``state_dir`` (``<root>/.pipeline``)::

    registry/<service>/<hex>.tar    the archive        (written once, atomically)
    registry/<service>/<hex>.json   the release, and where the project sits in the repository
    releases/<service>/<hex[:12]>/  the extracted tree replicas run from (``snapshot_dir``)

``SnapshotStore`` reads that layout without the git repository: it is how the plane finds a
release's tree from nothing but a service and a digest (its own store, never a path sent
to it). Folders are created 0700.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

import git

from pipeline.core.errors import NotFoundError, PlatformError
from pipeline.core.model import Release
from pipeline.local.private_files import private_dir

_DIGEST = re.compile(r"(?:^|@)(sha256:[0-9a-f]{64})\Z")  # \Z: "$" also matches before a final newline


class SnapshotStore:
    """The stored releases under ``state_dir``: a release by digest, and its extracted tree."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir).resolve()

    def stored(self, service: str, digest: str) -> Release:
        """The release of ``service`` stored with ``digest``; NotFoundError when there is none."""
        return self._stored(service, digest)[0]

    def snapshot_dir(self, release: Release) -> Path:
        """The extracted tree of ``release`` (the project root inside the snapshot), created
        on first use, atomically. NotFoundError if its archive was never stored."""
        return self._tree(release) / self._stored_subdir(release)

    def _tree(self, release: Release) -> Path:
        hexdigest = release.digest.removeprefix("sha256:")
        target = self.state_dir / "releases" / release.service / hexdigest[:12]
        if not target.is_dir():
            archive = self._files(release.service, hexdigest)[0]
            if not archive.is_file():
                raise NotFoundError(
                    f"release {release.short} of {release.service} has no stored snapshot at {archive}",
                    hint=f"resolve it again: `pipeline deploy {release.service} --ref {release.commit[:12]}`",
                )
            _extract(archive, target)
        return target

    def _stored_subdir(self, release: Release) -> str:
        try:
            subdir = str(self._stored(release.service, release.digest)[1].get("subdir", "."))
        except NotFoundError:
            return "."
        return subdir if subdir and not Path(subdir).is_absolute() and ".." not in Path(subdir).parts else "."

    def _files(self, service: str, hexdigest: str) -> tuple[Path, Path]:
        base = self.state_dir / "registry" / service
        return base / f"{hexdigest}.tar", base / f"{hexdigest}.json"

    def _stored(self, service: str, digest: str) -> tuple[Release, dict[str, object]]:
        meta = self._files(service, digest.removeprefix("sha256:"))[1]
        try:
            data = json.loads(meta.read_text())
            return Release.from_dict(data), data
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise NotFoundError(
                f"no release of {service} with digest {digest} in the local registry",
                hint="deploy a git reference instead (`--ref HEAD`), which stores its snapshot",
            ) from exc


class LocalRegistry(SnapshotStore):
    """``ImageRegistry`` over the git repository holding ``root``; files under ``state_dir``."""

    def __init__(self, root: Path, state_dir: Path) -> None:
        super().__init__(state_dir)
        self.root = Path(root).resolve()

    def resolve(self, service: str, reference: str = "HEAD") -> Release:
        """The release of ``service`` at ``reference``; stores its snapshot. Idempotent.

        Raises NotFoundError when the reference names no commit (or no stored digest).
        """
        reference = reference.strip() or "HEAD"
        found = _DIGEST.search(reference)
        if found:
            return self.stored(service, found.group(1))
        repo = self._repo()
        try:
            commit = repo.commit(reference)
        except (git.BadName, git.BadObject, ValueError) as exc:
            raise NotFoundError(
                f"no commit of {repo.working_dir} matches {reference!r}: {exc}",
                hint="pass a branch, tag or sha that `git rev-parse` knows (default HEAD)",
            ) from exc
        archive = self._archive(repo, commit.hexsha)
        digest = "sha256:" + hashlib.sha256(archive).hexdigest()
        release = Release(
            service=service, version=_version(repo, commit.hexsha), digest=digest,
            commit=commit.hexsha, image=f"local/{service}@{digest}",
        )
        self._store(release, archive)
        return release

    def snapshot_dir(self, release: Release) -> Path:
        """The extracted tree of ``release`` (the project root inside the snapshot), created
        on first use, atomically. NotFoundError if its archive was never stored."""
        return self._tree(release) / self._subdir()

    # --- internals -----------------------------------------------------------------

    def _repo(self) -> git.Repo:
        try:
            return git.Repo(self.root, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise NotFoundError(
                f"{self.root} is not inside a git repository: the local registry snapshots commits",
                hint="run `git init` and commit the project, or run from inside the repository",
            ) from exc

    def _subdir(self) -> str:
        """The project root relative to the repository's top (``.`` when they are the same)."""
        try:
            top = Path(self._repo().working_dir).resolve()
            return str(self.root.relative_to(top)) or "."
        except (ValueError, NotFoundError):
            return "."

    def _archive(self, repo: git.Repo, sha: str) -> bytes:
        buffer = io.BytesIO()
        try:
            repo.archive(buffer, treeish=sha, format="tar")
        except git.GitCommandError as exc:
            raise PlatformError(
                f"git archive of {sha[:12]} failed: {exc.stderr.strip() or exc}",
                hint="check that `git archive` works in this repository",
            ) from exc
        return buffer.getvalue()

    def _store(self, release: Release, archive: bytes) -> None:
        tar_path, meta_path = self._files(release.service, release.digest.removeprefix("sha256:"))
        try:
            private_dir(self.state_dir)
            private_dir(tar_path.parent.parent)
            private_dir(tar_path.parent)
            if not tar_path.is_file():
                _write_atomically(tar_path, archive)
            meta = {**release.to_dict(), "subdir": self._subdir()}
            _write_atomically(meta_path, json.dumps(meta, indent=1).encode())
        except OSError as exc:
            raise PlatformError(
                f"cannot store the snapshot of {release.short} under {tar_path.parent}: {exc}",
                hint="check free disk space and permissions of .pipeline/",
            ) from exc


def _version(repo: git.Repo, sha: str) -> str:
    """The first tag (sorted) pointing at ``sha``, else the short sha."""
    tags = sorted(t for t in repo.git.tag("--points-at", sha).split() if t)
    return tags[0] if tags else str(repo.git.rev_parse("--short", sha))


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _extract_data(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract with the "data" filter (no absolute paths, no escapes, no devices).

    Python 3.11.4+ and 3.12 have the filter built in; older 3.11 builds (Debian 12's python3
    is 3.11.2) do not, so the same rules are checked here before a plain extraction.
    """
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for member in tar.getmembers():
        path = (root / member.name).resolve()
        link_ok = not (member.issym() or member.islnk()) or (
            (path.parent / member.linkname).resolve().is_relative_to(root)
            and not Path(member.linkname).is_absolute()
        )
        if not path.is_relative_to(root) or not link_ok or member.isdev():
            raise tarfile.TarError(f"unsafe member {member.name!r} in the snapshot")
    tar.extractall(dest)  # every member was checked above


def _extract(archive: Path, target: Path) -> None:
    private_dir(target.parent.parent)
    private_dir(target.parent)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        with tarfile.open(archive) as tar:
            _extract_data(tar, tmp)
        os.rename(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if target.is_dir():  # another process extracted it first
            return
        raise PlatformError(f"cannot extract {archive} to {target}: {exc}") from exc
    except tarfile.TarError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PlatformError(f"snapshot {archive} is corrupt: {exc}",
                            hint="delete it and deploy again") from exc
