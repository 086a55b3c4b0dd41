"""Is a lease's holder process still alive? Shared by every LockManager (SQLite, DynamoDB).

A holder is recorded as a ``ProcessIdentity``: the kernel boot id
(``/proc/sys/kernel/random/boot_id``), the PID namespace (``/proc/self/ns/pid``), the pid
and the process start time (``/proc/<pid>/stat`` field 22, clock ticks since boot).

A holder is judged dead only when all of this holds: it ran under the same boot and in
the same PID namespace as we do (so its pid means the same process to us), and that pid
no longer exists or now names a process that started at another time (a reused pid).
A process in another container, another PID namespace, on another machine or on a
platform without ``/proc`` is never judged dead: its lease has to expire.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from pipeline.core.ports import Lease, ProcessIdentity

__all__ = ["Watch", "holder_is_dead", "start_time", "this_process"]

_PROC = Path("/proc")


@cache
def _boot_id() -> str:
    return _read(_PROC / "sys" / "kernel" / "random" / "boot_id").strip()


@cache
def _pid_ns() -> str:
    try:
        return os.readlink(_PROC / "self" / "ns" / "pid")
    except OSError:
        return ""


def start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None when no such process exists."""
    stat = _read(_PROC / str(pid) / "stat")
    if not stat:
        return None
    # Field 2 (the command) is in parentheses and may contain spaces: split after it.
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])  # field 22 overall; fields[0] is field 3
    except (IndexError, ValueError):
        return None


def this_process() -> ProcessIdentity:
    """The identity of the calling process (empty fields where ``/proc`` cannot tell)."""
    pid = os.getpid()
    return ProcessIdentity(_boot_id(), _pid_ns(), pid, start_time(pid) or 0)


def holder_is_dead(holder: ProcessIdentity, *, me: ProcessIdentity | None = None) -> bool:
    """True only if ``holder`` provably no longer runs (see the module docstring)."""
    me = me or this_process()
    comparable = holder.boot_id and holder.pid_ns and holder.pid > 0 and holder.start_time > 0
    if not comparable or (holder.boot_id, holder.pid_ns) != (me.boot_id, me.pid_ns):
        return False
    started = start_time(holder.pid)
    if started is None:  # no stat to read: gone, unless /proc hides it (hidepid) and it runs
        return not _signalable(holder.pid)
    return started != holder.start_time


def _signalable(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists but is someone else's
        return True
    return True


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


class Watch:
    """What a would-be taker has seen of a held lease, and for how long of its own time.

    ``verdict`` decides, on each fresh read of the lease, to ``TAKE`` it, ``REFUSE`` (raise
    LockHeldError) or ``WAIT`` one more ``slice`` of seconds and read again. Expiry never
    rests on two clocks agreeing: the holder's ``expires_at`` (its own clock) only decides
    whether to refuse at once or to start watching; the lease is taken over only after
    the taker has slept through ``ttl`` seconds (its own clock) without the lease's
    ``(owner, token, version)`` changing, i.e. without one renewal by the holder.
    """

    TAKE, REFUSE, WAIT = "take", "refuse", "wait"
    SLICES = 6  # reads per ttl while watching

    def __init__(self) -> None:
        self.seen: tuple[str, int, int] | None = None
        self.slept = 0  # slices slept while the lease stayed as ``seen`` (SLICES = one ttl)
        self.slice = 0.0

    def verdict(self, held: Lease | None, owner: str, now: float, ttl: float) -> str:
        if held is None or not held.owner or held.owner == owner or holder_is_dead(held.holder):
            return self.TAKE
        mark = (held.owner, held.token, held.version)
        if self.seen is None:
            if held.expires_at > now:
                return self.REFUSE  # live by its own estimate: fail fast, naming it
            self.seen, self.slice = mark, max(held.ttl or ttl, 0.0) / self.SLICES
        elif mark != self.seen:
            return self.REFUSE  # it renewed, or another run took it: alive
        return self.TAKE if self.slept >= self.SLICES else self.WAIT

    def waited(self) -> None:
        """Call after sleeping one ``slice`` (the clock's sleep lasts at least that long)."""
        self.slept += 1
