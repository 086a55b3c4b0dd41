"""Which services changed between two commits (gitpython), from each service's ``paths``.

A service changed when a file changed under ``services/<name>/`` or matches one of its
``paths`` globs (``*`` within a folder, ``**`` across folders). A base of all zeros (the
first push of a branch) or a base that is not in the repository marks every service.
"""

from __future__ import annotations

import re
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
    everything: bool = False  # the base was unknown: every service counts as changed


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


def detect(root: Path, base: str, head: str, service_paths: Mapping[str, Sequence[str]]) -> Changes:
    """Changed files between ``base`` and ``head`` in the repository at ``root``."""
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise NotFoundError(f"{root} is not inside a git repository", hint="run it in a clone") from exc
    try:
        head_commit = repo.commit(head)
    except (git.BadName, ValueError) as exc:
        raise UsageError(f"unknown --head {head!r}: {exc}", hint="pass a commit SHA or ref") from exc
    try:
        base_commit = None if base.strip("0") == "" else repo.commit(base)
    except (git.BadName, ValueError):
        base_commit = None
    if base_commit is None:
        return Changes(base, head_commit.hexsha, (), tuple(sorted(service_paths)), everything=True)
    prefix = Path(repo.working_tree_dir or root).resolve()
    rel = Path(root).resolve().relative_to(prefix).as_posix()
    files = []
    for diff in base_commit.diff(head_commit):
        for p in {diff.a_path, diff.b_path} - {None}:
            path = str(p)
            if rel not in ("", "."):
                if not path.startswith(rel + "/"):
                    continue
                path = path[len(rel) + 1 :]
            files.append(path)
    files = sorted(set(files))
    return Changes(base_commit.hexsha, head_commit.hexsha, tuple(files), affected(files, service_paths))
