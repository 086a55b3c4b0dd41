"""Lock owners: ``name@HOST:PID`` strings that let a crashed run's lock be taken over.

Shared by every LockManager (SQLite, DynamoDB): a lease whose holder ran on this host in
a process that no longer exists can be taken over at once instead of waiting for expiry.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys


def actor() -> str:
    """Who is acting: ``$GITHUB_ACTOR`` in GitHub Actions, ``$PIPELINE_ACTOR`` if set, else the
    OS user. Recorded in every audit record and used in lock owners and AWS session names."""
    return os.environ.get("GITHUB_ACTOR") or os.environ.get("PIPELINE_ACTOR") or getpass.getuser()


def owner_id(name: str) -> str:
    """``name@HOST:PID`` for this process: an owner string that allows crash takeover."""
    return f"{name}@{socket.gethostname()}:{os.getpid()}"


def crashed_on_this_host(owner: str) -> bool:
    """True only if ``owner`` is ``anything@HOST:PID``, HOST is this machine and PID is gone."""
    _, at, host_pid = owner.rpartition("@")
    host, colon, pid_text = host_pid.rpartition(":")
    if not (at and colon and pid_text.isdigit()) or host != socket.gethostname():
        return False
    pid = int(pid_text)
    return pid > 0 and not _process_exists(pid)


def _process_exists(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists but belongs to someone else; anything else: assume alive
        return True
    return True
