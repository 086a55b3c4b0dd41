"""Files only their owner can read: the local platform's folder is 0700, its files 0600.

The plane's folder (``.pipeline/`` or ``$PIPELINE_LOCAL_HOME``) holds the control API's
token, the state database, logs and release snapshots; other accounts on the machine must
not read any of it. The plane process itself runs with umask 077; the CLI process, which
also writes there (registry, state database), creates what it writes with these helpers.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) and make it 0700: only its owner may enter."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):  # not ours (e.g. a shared $PIPELINE_LOCAL_HOME's parent)
        os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, created 0600 (never readable by others, not
    even for a moment)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def private_file(path: Path) -> Path:
    """Create ``path`` empty if it does not exist, 0600 (SQLite then gives its ``-wal`` and
    ``-shm`` files the same mode); an existing file is made 0600 too."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
    return path
