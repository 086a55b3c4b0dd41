"""The process supervisor: the replicas of every (environment, service, slot).

``provision`` puts a release in a slot (idempotent: the same spec is a no-op; a different
one replaces the slot's replicas, the old ones draining in the background);
``scale_down`` drains and stops a slot and returns once every process is gone (idempotent,
and a second caller waits for the same stop); ``pick`` hands the router the next healthy
replica of a slot, round-robin. Readiness is judged against a release digest, so a slot
still running (or starting) another release is never reported ready for this one, and a
slot whose replicas cannot start says so at once (``failed``, see ``Replica.failure``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from pipeline.local.replicas.replica import Replica, ReplicaState
from pipeline.local.specs import ReleaseSpec


@dataclass(frozen=True, slots=True)
class SlotKey:
    environment: str
    service: str
    slot: str

    def __str__(self) -> str:
        return f"{self.service}@{self.environment}/{self.slot}"


class ReplicaSet:
    """The ``spec.launch.replicas`` replicas of one release in one slot."""

    def __init__(self, key: SlotKey, spec: ReleaseSpec, logs: Path, http: aiohttp.ClientSession) -> None:
        self.key = key
        self.spec = spec
        self.replicas = [
            Replica(spec, key.slot, i, logs / key.environment / key.service / f"{key.slot}-{i}.log", http)
            for i in range(spec.launch.replicas)
        ]
        self._next = 0

    def start(self) -> None:
        for replica in self.replicas:
            replica.start()

    async def stop(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.replicas))

    def pick(self, exclude: frozenset[Replica] = frozenset()) -> Replica | None:
        """The next in-rotation replica not in ``exclude`` (round-robin), or None."""
        n = len(self.replicas)
        for step in range(n):
            replica = self.replicas[(self._next + step) % n]
            if replica.in_rotation and replica not in exclude:
                self._next = (self._next + step + 1) % n
                return replica
        return None

    def health(self, digest: str) -> dict[str, object]:
        """running/desired/healthy of this set, judged for release ``digest``; ``failed`` says
        why the release cannot become ready ("" while that is not clear)."""
        matches = self.spec.digest == digest
        running = sum(1 for r in self.replicas if r.running)
        healthy = sum(1 for r in self.replicas if r.in_rotation)
        problems = sorted({r.last_error for r in self.replicas if r.last_error and not r.in_rotation})
        failed = next((r.failure for r in self.replicas if r.failure), "") if matches else ""
        detail = "" if matches else f"slot runs {self.spec.version} ({self.spec.digest[7:19]})"
        if problems:
            detail = "; ".join(filter(None, [detail, *problems]))
        return {
            "running": running if matches else 0,
            "desired": self.spec.launch.replicas,
            "healthy": healthy if matches else 0,
            "revision_matches": matches,
            "detail": detail,
            "failed": failed,
        }

    def snapshot(self) -> dict[str, object]:
        return {
            "version": self.spec.version,
            "digest": self.spec.digest,
            "desired": self.spec.launch.replicas,
            "healthy": sum(1 for r in self.replicas if r.in_rotation),
            "replicas": [r.snapshot() for r in self.replicas],
        }


class Supervisor:
    """Every replica set the plane runs; ``logs`` is the directory of replica logs."""

    def __init__(self, logs: Path, http: aiohttp.ClientSession) -> None:
        self._logs = logs
        self._http = http
        self._sets: dict[SlotKey, ReplicaSet] = {}
        self._stopping: dict[SlotKey, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()

    def provision(self, key: SlotKey, spec: ReleaseSpec) -> bool:
        """Run ``spec`` in ``key``'s slot; returns False when it already did (no-op)."""
        current = self._sets.get(key)
        if current is not None and current.spec == spec:
            return False
        fresh = ReplicaSet(key, spec, self._logs, self._http)
        self._sets[key] = fresh
        fresh.start()
        if current is not None:
            task = asyncio.create_task(current.stop(), name=f"retire-{key}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return True

    async def scale_down(self, key: SlotKey) -> bool:
        """Drain and stop ``key``'s slot; returns False when it was already stopped."""
        running = self._sets.pop(key, None)
        if running is not None:
            self._stopping[key] = asyncio.create_task(running.stop(), name=f"stop-{key}")
        task = self._stopping.get(key)
        if task is None:
            return False
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._stopping.get(key) is task:
                del self._stopping[key]
        return running is not None

    def get(self, key: SlotKey) -> ReplicaSet | None:
        return self._sets.get(key)

    def pick(self, key: SlotKey, exclude: frozenset[Replica] = frozenset()) -> Replica | None:
        replica_set = self._sets.get(key)
        return replica_set.pick(exclude) if replica_set is not None else None

    def health(self, key: SlotKey, digest: str) -> dict[str, object]:
        replica_set = self._sets.get(key)
        if replica_set is None:
            state = "stopping" if key in self._stopping else "empty"
            return {"running": 0, "desired": 0, "healthy": 0, "revision_matches": False,
                    "detail": f"{key.slot} is {state}"}
        return replica_set.health(digest)

    def keys(self) -> list[SlotKey]:
        return list(self._sets)

    def process_count(self) -> int:
        return sum(1 for s in self._sets.values() for r in s.replicas if r.state is not ReplicaState.STOPPED)

    async def close(self) -> None:
        """Drain and stop every replica (the plane is going away); returns when all are gone."""
        sets = list(self._sets.values())
        self._sets.clear()
        await asyncio.gather(*(s.stop() for s in sets), *self._stopping.values(), *self._background,
                             return_exceptions=True)
        self._stopping.clear()
