"""Who acts, and lock owners: ``name@HOST:PID`` strings naming a run to people.

Whether a lease's holder is still alive is decided from its recorded process identity
(``pipeline.liveness``), not from this string.
"""

from __future__ import annotations

import getpass
import os
import socket


def actor() -> str:
    """Who is acting: ``$GITHUB_ACTOR`` in GitHub Actions, ``$PIPELINE_ACTOR`` if set, else the
    OS user. Recorded in every audit record and used in lock owners and AWS session names."""
    return os.environ.get("GITHUB_ACTOR") or os.environ.get("PIPELINE_ACTOR") or getpass.getuser()


def owner_id(name: str) -> str:
    """``name@HOST:PID`` for this process: names the run holding a lock, for people."""
    return f"{name}@{socket.gethostname()}:{os.getpid()}"
