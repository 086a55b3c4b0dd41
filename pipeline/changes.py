"""Which services changed between two commits (gitpython), from each service's ``paths``.

A service changed when a file changed under ``services/<name>/`` or matches one of its
``paths`` globs (``*`` within a folder, ``**`` across folders). Every service counts as
changed when the base is all zeros (the first push of a branch), is not in the repository,
or is not an ancestor of the head (a force push rewrote history), and when a changed file
matches one of the project's ``shared_paths``. ``select`` is the manual alternative: the
named services, each checked against the known ones.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import git

from pipeline.core.errors import NotFoundError, UsageError

ZERO_SHA = "0" * 40


@dataclass(frozen=True, slots=True)
class Changes:
    base: str
    head: str
    files: tuple[str, ...]
    services: tuple[str, ...]
    everything: bool = False  # every service counts as changed; ``reason`` says why
    reason: str = ""


@lru_cache(maxsize=256)
def _pattern(glob: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def matches(path: str, globs: Iterable[str]) -> bool:
    return any(_pattern(g).match(path) for g in globs)


def affected(files: Iterable[str], service_paths: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """Services whose folder or ``paths`` globs match any of ``files``."""
    files = list(files)
    hit = {
        name
        for name, globs in service_paths.items()
        if any(f.startswith(f"services/{name}/") or matches(f, globs) for f in files)
    }
    return tuple(sorted(hit))


def detect(
    root: Path,
    base: str,
    head: str,
    service_paths: Mapping[str, Sequence[str]],
    shared_paths: Sequence[str] = (),
) -> Changes:
    """Changed files between ``base`` and ``head`` in the repository at ``root``."""
    repo = _repo(root)
    try:
        head_commit = repo.commit(head)
    except (git.BadName, ValueError) as exc:
        raise UsageError(f"unknown --head {head!r}: {exc}", hint="pass a commit SHA or ref") from exc
    everyone = tuple(sorted(service_paths))
    try:
        base_commit = None if base.strip("0") == "" else repo.commit(base)
    except (git.BadName, ValueError):
        base_commit = None
    if base_commit is None:
        why = "the base is all zeros (a new branch)" if base.strip("0") == "" else f"unknown base {base!r}"
        return Changes(base, head_commit.hexsha, (), everyone, everything=True, reason=why)
    files = _changed_files(repo, root, base_commit, head_commit)
    if not repo.is_ancestor(base_commit, head_commit):
        why = f"{base_commit.hexsha[:12]} is not an ancestor of {head_commit.hexsha[:12]} (a force push)"
        return Changes(base_commit.hexsha, head_commit.hexsha, files, everyone, everything=True, reason=why)
    shared = [f for f in files if matches(f, shared_paths)]
    if shared:
        why = f"{shared[0]} matches shared_paths"
        return Changes(base_commit.hexsha, head_commit.hexsha, files, everyone, everything=True, reason=why)
    return Changes(base_commit.hexsha, head_commit.hexsha, files, affected(files, service_paths))


def select(text: str, known: Iterable[str]) -> tuple[str, ...]:
    """The services named in ``text`` (separated by spaces or commas), sorted, deduplicated.

    ``UsageError`` naming the first unknown name (shown as a repr, so a crafted value
    stays inert in the message) and listing the known services; also for an empty list.
    """
    names = [n for n in re.split(r"[\s,]+", text.strip()) if n]
    services = set(known)
    for name in names:
        if name not in services:
            shown = name if set(name) <= _PLAIN else repr(name)
            raise UsageError(
                f"unknown service {shown} in --select: there is no services/<name>/service.yaml for it",
                hint=f"known services: {', '.join(sorted(services)) or 'none'}",
            )
    if not names:
        raise UsageError("--select names no service", hint="pass names separated by spaces or commas")
    return tuple(sorted(set(names)))


_PLAIN = frozenset(string.ascii_lowercase + string.digits + "-")


def _repo(root: Path) -> git.Repo:
    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise NotFoundError(f"{root} is not inside a git repository", hint="run it in a clone") from exc


def _changed_files(repo: git.Repo, root: Path, base: git.Commit, head: git.Commit) -> tuple[str, ...]:
    """Paths changed between the two commits, relative to ``root`` (files outside it dropped)."""
    prefix = Path(repo.working_tree_dir or root).resolve()
    rel = Path(root).resolve().relative_to(prefix).as_posix()
    files = []
    for diff in base.diff(head):
        for p in {diff.a_path, diff.b_path} - {None}:
            path = str(p)
            if rel not in ("", "."):
                if not path.startswith(rel + "/"):
                    continue
                path = path[len(rel) + 1 :]
            files.append(path)
    return tuple(sorted(set(files)))
