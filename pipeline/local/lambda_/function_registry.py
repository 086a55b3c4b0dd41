"""What the local Lambda runtime knows about its functions, kept on disk under ``work_dir``.

Layout::

    work_dir/state.json                          functions, versions, aliases, concurrency
    work_dir/functions/<function>/<n>/code/      the unpacked package of version n
    work_dir/functions/<function>/<n>/package.zip

``state.json`` is rewritten atomically (write + rename) after every change, so a runtime
restarted on the same ``work_dir`` (``pipeline local down`` / ``up``) still has every
version, alias and concurrency setting; only warm workers and metrics are lost.
Versions are immutable and never deleted. Not thread-safe: one event loop owns it.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.errors import NotFoundError, UsageError
from pipeline.local.lambda_.model import (
    ALIAS_NAME,
    FUNCTION_NAME,
    LATEST,
    VersionSpec,
    check_name,
    check_version_config,
)
from pipeline.local.lambda_.package import extract_package, sha256_hex

WEIGHT_TOLERANCE = 1e-6


@dataclass(slots=True)
class Alias:
    weights: dict[str, float]
    description: str = ""


@dataclass(slots=True)
class FunctionRecord:
    name: str
    versions: dict[str, VersionSpec] = field(default_factory=dict)
    aliases: dict[str, Alias] = field(default_factory=dict)
    reserved: int | None = None
    provisioned: dict[str, int] = field(default_factory=dict)

    @property
    def latest(self) -> VersionSpec | None:
        return self.versions[str(len(self.versions))] if self.versions else None

    def version(self, number: str) -> VersionSpec:
        spec = self.versions.get(self.latest.number if number == LATEST and self.latest else number)
        if spec is None:
            raise NotFoundError(
                f"function {self.name} has no version {number}",
                hint=f"published versions: {', '.join(self.versions) or 'none'}",
            )
        return spec

    def resolve(self, qualifier: str, roll: float) -> VersionSpec:
        """The version a qualifier names: a number, ``$LATEST``, or an alias's weighted choice.

        ``roll`` in [0, 1) picks along the alias's cumulative weights, in version order.
        """
        if qualifier == LATEST or qualifier.isdigit():
            return self.version(qualifier)
        total, chosen = 0.0, ""
        for number, weight in sorted(self.alias(qualifier).weights.items(), key=lambda item: int(item[0])):
            if weight > 0.0:
                chosen, total = number, total + weight
                if roll < total:
                    break
        return self.version(chosen)

    def alias(self, name: str) -> Alias:
        alias = self.aliases.get(name)
        if alias is None:
            raise NotFoundError(
                f"function {self.name} has no alias {name!r}",
                hint=f"aliases: {', '.join(sorted(self.aliases)) or 'none'}; set one first",
            )
        return alias


class Registry:
    """Functions by name, loaded from and saved to ``root/state.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._state_file = root / "state.json"
        self.functions: dict[str, FunctionRecord] = {}
        if self._state_file.exists():
            self._load()

    def function(self, name: str) -> FunctionRecord:
        record = self.functions.get(name)
        if record is None:
            raise NotFoundError(
                f"no Lambda function named {name!r} in the local runtime",
                hint="publish a version first (a deployment does that)",
            )
        return record

    def code_dir(self, spec: VersionSpec) -> Path:
        return self.root / "functions" / spec.function / spec.number / "code"

    def publish(
        self, function: str, data: bytes, handler: str, memory: int, timeout: float, env: dict[str, str]
    ) -> tuple[VersionSpec, bool]:
        """Publish ``data`` (a zip) as the next version; (version, created).

        Idempotent: when the latest version has the same code and configuration, it is
        returned and nothing is created (AWS does the same).
        """
        check_name("function name", function, FUNCTION_NAME, "use 1-64 letters, digits, '-' or '_'")
        check_version_config(handler, memory, timeout)
        record = self.functions.get(function) or FunctionRecord(function)
        number = str(len(record.versions) + 1)
        sha = sha256_hex(data)
        spec = VersionSpec(function, number, sha, handler, memory, timeout, dict(env), time.time())
        latest = record.latest
        if latest is not None and latest.same_config(spec):
            return latest, False
        home = self.code_dir(spec).parent
        shutil.rmtree(home, ignore_errors=True)  # left over by a publish that crashed half-way
        extract_package(data, home / "code")
        (home / "package.zip").write_bytes(data)
        record.versions[number] = spec
        self.functions[function] = record
        self.save()
        return spec, True

    def set_alias(self, function: str, alias: str, weights: dict[str, float], description: str) -> None:
        """Point ``alias`` at versions with weights in [0, 1] summing to 1. Atomic, idempotent."""
        record = self.function(function)
        check_name("alias name", alias, ALIAS_NAME, "use letters, digits, '-' or '_', not only digits")
        if not weights:
            raise UsageError(f"alias {alias} of {function} needs at least one version", hint="give weights")
        for version, weight in weights.items():
            record.version(version)
            if not (_is_number(weight) and math.isfinite(weight) and 0.0 <= weight <= 1.0):
                raise UsageError(
                    f"invalid weight {weight!r} for version {version} of {function}: must be within 0..1",
                    hint="weights are fractions of the traffic, e.g. {'1': 0.9, '2': 0.1}",
                )
        total = sum(weights.values())
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise UsageError(
                f"weights of alias {alias} of {function} sum to {total:g}, not 1",
                hint="make the fractions add up to 1.0",
            )
        record.aliases[alias] = Alias({v: float(w) for v, w in weights.items()}, description)
        self.save()

    def set_reserved(self, function: str, n: int | None) -> None:
        """Cap ``function``'s concurrent executions at ``n`` (None: share the unreserved pool)."""
        record = self.function(function)
        if n is not None:
            _check_count("reserved concurrency", n)
        if n is not None and any(p > n for p in record.provisioned.values()):
            raise UsageError(
                f"cannot reserve {n} concurrent executions for {function}: "
                f"a version has {max(record.provisioned.values())} provisioned",
                hint="lower the provisioned concurrency first",
            )
        record.reserved = n
        self.save()

    def set_provisioned(self, function: str, version: str, n: int) -> None:
        """Keep ``n`` environments of ``version`` initialised (0 removes the setting)."""
        record = self.function(function)
        _check_count("provisioned concurrency", n)
        spec = record.version(version)
        if record.reserved is not None and n > record.reserved:
            raise UsageError(
                f"cannot provision {n} environments of {function}:{spec.number}: "
                f"only {record.reserved} concurrent executions are reserved",
                hint="lower provisioned concurrency or raise the reservation",
            )
        if n:
            record.provisioned[spec.number] = n
        else:
            record.provisioned.pop(spec.number, None)
        self.save()

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"functions": [_dump(r) for r in self.functions.values()]}, indent=1))
        tmp.replace(self._state_file)

    def _load(self) -> None:
        try:
            data = json.loads(self._state_file.read_text())
            records = [_parse(item) for item in data["functions"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"cannot read the local Lambda runtime's state {self._state_file}: {exc}",
                hint="move the file away to start with no functions",
            ) from exc
        self.functions = {r.name: r for r in records}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_count(what: str, n: object) -> None:
    if not (isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 1000):
        raise UsageError(f"invalid {what} {n!r}: must be a whole number 0..1000", hint=f"fix the {what}")


def _dump(r: FunctionRecord) -> dict[str, Any]:
    return {
        "name": r.name,
        "versions": [v.to_dict() for v in r.versions.values()],
        "aliases": {k: {"weights": a.weights, "description": a.description} for k, a in r.aliases.items()},
        "reserved": r.reserved,
        "provisioned": r.provisioned,
    }


def _parse(d: dict[str, Any]) -> FunctionRecord:
    versions = [VersionSpec.from_dict(v) for v in d["versions"]]
    return FunctionRecord(
        name=d["name"],
        versions={v.number: v for v in versions},
        aliases={k: Alias(dict(a["weights"]), a.get("description", "")) for k, a in d["aliases"].items()},
        reserved=d.get("reserved"),
        provisioned={k: int(n) for k, n in d.get("provisioned", {}).items()},
    )
