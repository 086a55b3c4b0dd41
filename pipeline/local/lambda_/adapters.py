"""Port adapters for a Lambda service on the local platform, over the runtime's control API.

The runtime runs in the local plane; these adapters run wherever the engine runs and talk
HTTP to ``http://127.0.0.1:<control port>/lambda/``. They keep no state of their own, so a
deployment resumed by another process sees exactly what the first one left:

- the two slots are aliases of the function named ``blue`` and ``green``, each pointing
  (weight 1.0) at the version that slot runs;
- live traffic goes through the alias ``live``, whose weights are the two slots' versions
  (its description records the requested split as ``Weights.note()``, the AWS alias router's
  format too, read back when both slots run one version).

``LocalLambdaCompute`` publishes versions, manages provisioned concurrency and the keep-warm
schedule, and warms the dependency chain and the new version before traffic moves,
``LocalLambdaRouter`` shifts ``live`` between the slots, ``LocalLambdaMetrics`` reports a
slot's version's metrics (a throttle counts as a request and as an error).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import NotFoundError, PlatformError, UsageError
from pipeline.core.model import Measurement, Release, Slot, SlotHealth, Weights
from pipeline.local.lambda_.control_client import LambdaControlClient
from pipeline.local.lambda_.package import package_directory, sha256_hex

if TYPE_CHECKING:
    from pipeline.config import ServiceConfig

Source = Path | Callable[[Release], Path]
LIVE = "live"


class LocalLambdaCompute:
    """Compute port: a slot runs a version published from the release's source directory.

    ``source`` is the directory holding the handler module, or a function giving it for a
    release (a source snapshot). ``memory`` MiB, ``timeout`` seconds, ``reserved`` and
    ``provisioned`` concurrency as in the service's ``lambda:`` settings.

    Once a slot's version is ready, ``health`` warms (once per version) each function of
    ``chain`` (the Lambda functions the service calls, deepest dependency first) at its
    ``live`` alias, then the new version itself (unless provisioned concurrency keeps it
    warm), ``warm_count`` environments each: the first requests after the shift meet no cold
    start on any hop. ``keep_warm`` is ``(every seconds, concurrency)`` for the plane's timer.
    """

    def __init__(
        self,
        base_url: str,
        function: str,
        source: Source,
        handler: str,
        *,
        memory: int = 128,
        timeout: float = 10.0,
        reserved: int | None = None,
        provisioned: int | None = None,
        environment: Mapping[str, str] | None = None,
        http_timeout: float = 30.0,
        token: str = "",
        chain: tuple[str, ...] = (),
        warm_count: int = 1,
        keep_warm: tuple[float, int] | None = None,
    ) -> None:
        self._client = LambdaControlClient(base_url, timeout=http_timeout, token=token)
        self._function = function
        self._chain = chain
        self._warm_count = max(1, warm_count)
        self._keep_warm = keep_warm
        self._warmed: dict[str, str] = {}  # version -> what its warm-up did
        self._source = source
        self._handler = handler
        self._memory = memory
        self._timeout = timeout
        self._reserved = reserved
        self._provisioned = provisioned or 0
        self._environment = dict(environment or {})
        self._shas: dict[str, str] = {}

    def provision(self, slot: Slot, release: Release) -> None:
        """Publish the release's package (a no-op when unchanged), point the slot's alias at it,
        apply reserved concurrency and request provisioned concurrency. Idempotent; no waiting."""
        data = package_directory(self._source_dir(release))
        self._shas[release.digest] = sha256_hex(data)
        published = self._client.publish(
            self._function, data, self._handler, self._memory, self._timeout, self._environment
        )
        version = str(published["version"])
        note = f"{release.version} {release.digest}"
        self._client.set_alias(self._function, slot.value, {version: 1.0}, note)
        self._client.set_reserved(self._function, self._reserved)
        if self._provisioned:
            self._client.set_provisioned(self._function, version, self._provisioned)
        every, concurrency = self._keep_warm or (0.0, 1)
        self._client.set_keep_warm(self._function, every, concurrency)
        self._warmed.pop(version, None)

    def health(self, slot: Slot, release: Release) -> SlotHealth:
        """Ready when the slot's version holds this release's package and, with provisioned
        concurrency configured, all its provisioned environments are initialised.

        Raises PlatformError as soon as provisioned concurrency FAILED (an environment's init
        failed: the handler module does not import, or crashed), quoting the error.
        """
        desired = self._provisioned or 1
        version = self._client.slot_version(self._function, slot)
        if version is None:
            return SlotHealth(0, desired, 0, False, f"no version of {self._function} in the {slot} slot yet")
        if self._client.version(self._function, version)["sha256"] != self._sha(release):
            note = f"the {slot} slot runs version {version}, another package"
            return SlotHealth(0, desired, 0, False, note)
        if not self._provisioned:
            warmed = self._warm(version)
            return SlotHealth(1, 1, 1, True, f"version {version} published (on-demand concurrency); {warmed}")
        state = self._client.provisioned(self._function, version)
        if state["status"] == "FAILED":
            raise PlatformError(
                f"version {version} of {self._function} ({release.short}) cannot start: {state['reason']}",
                hint="fix the handler's import-time code and deploy again; worker output is in the "
                "runtime's logs/ folder",
            )
        ready = min(int(state["ready"]), desired)
        detail = f"version {version}: provisioned concurrency {state['status']} ({ready}/{desired})"
        if state.get("reason"):
            detail += f": {state['reason']}"
        if ready == desired:
            detail += f"; {self._warm(version)}"
        return SlotHealth(ready, desired, ready, True, detail)

    def scale_down(self, slot: Slot) -> None:
        """Remove the provisioned concurrency of the slot's version (unless the other slot runs
        the same version). Idempotent. Its on-demand workers stop when idle."""
        version = self._client.slot_version(self._function, slot)
        if version is None or version == self._client.slot_version(self._function, slot.other()):
            return
        if self._client.provisioned(self._function, version)["requested"]:
            self._client.set_provisioned(self._function, version, 0)

    def endpoint(self, slot: Slot) -> str:
        """A base URL invoking the slot's version directly, through an HTTP API-style event."""
        version = self._client.slot_version(self._function, slot)
        if version is None:
            raise PlatformError(
                f"{self._function} has no version in the {slot} slot: nothing to test there",
                hint="the deployment provisions the slot first; check `pipeline status`",
            )
        return self._client.invoke_url(self._function, version)

    def _warm(self, version: str) -> str:
        """Warm the chain (deepest first), then ``version``; once per version. What it did."""
        if version not in self._warmed:
            notes = []
            for function in self._chain:
                try:
                    notes += _warm_notes(self._client.warm(function, LIVE, self._warm_count))
                except NotFoundError:  # not deployed here yet: nothing of it to warm
                    notes.append(f"{function}: not deployed")
            if not self._provisioned:  # provisioned concurrency keeps the version warm itself
                notes += _warm_notes(self._client.warm(self._function, version, self._warm_count))
            self._warmed[version] = "warmed " + ", ".join(notes) if notes else "nothing to warm"
        return self._warmed[version]

    def _source_dir(self, release: Release) -> Path:
        return self._source if isinstance(self._source, Path) else self._source(release)

    def _sha(self, release: Release) -> str:
        if release.digest not in self._shas:
            self._shas[release.digest] = sha256_hex(package_directory(self._source_dir(release)))
        return self._shas[release.digest]


def _warm_notes(reports: list[dict[str, Any]]) -> list[str]:
    notes = []
    for r in reports:
        note = f"{r['function']}:{r['version']} {r['warm']}/{r['requested']}"
        notes.append(note + (f" ({'; '.join(r['errors'])[:120]})" if r["errors"] else ""))
    return notes


class LocalLambdaRouter:
    """TrafficRouter port: ``Weights(blue, green)`` as the ``live`` alias's version weights."""

    def __init__(
        self, base_url: str, function: str, *, alias: str = LIVE, http_timeout: float = 30.0, token: str = ""
    ) -> None:
        self._client = LambdaControlClient(base_url, timeout=http_timeout, token=token)
        self._function = function
        self._alias = alias

    def set_weights(self, weights: Weights) -> None:
        """Set the alias in one atomic call. Idempotent. A slot with weight > 0 needs a version."""
        versions: dict[str, float] = {}
        for slot in Slot:
            percent = weights.of(slot)
            if percent == 0:
                continue
            version = self._client.slot_version(self._function, slot)
            if version is None:
                raise PlatformError(
                    f"cannot send {percent}% of {self._function} to the {slot} slot: it has no version",
                    hint="provision the slot first (a deployment does); check `pipeline status`",
                )
            versions[version] = versions.get(version, 0.0) + percent / 100.0
        self._client.set_alias(self._function, self._alias, versions, weights.note())

    def get_weights(self) -> Weights | None:
        """The split the alias applies now; None when there is no alias yet."""
        live = self._client.alias(self._function, self._alias)
        if live is None:
            return None
        blue = self._client.slot_version(self._function, Slot.BLUE)
        green = self._client.slot_version(self._function, Slot.GREEN)
        weights: dict[str, float] = live["weights"]
        split = {v: round(w * 100) for v, w in weights.items() if w > 0}
        if blue is not None and blue == green and set(split) == {blue}:
            # one version serves both slots, so any split is in effect: report the requested one
            return Weights.from_note(str(live.get("description", "")))
        b = split.pop(blue, 0) if blue else 0
        g = split.pop(green, 0) if green and green != blue else 0
        if split or b + g != 100:
            raise PlatformError(
                f"the {self._alias} alias of {self._function} sends traffic to versions outside the "
                f"blue and green slots: {weights}",
                hint="the next weight change overwrites it; "
                "`pipeline rollback` sets it to the last good release",
            )
        return Weights(b, g)


class LocalLambdaMetrics:
    """Metrics port: a slot's version's invocations, errors, throttles and duration p95."""

    def __init__(self, base_url: str, function: str, *, http_timeout: float = 30.0, token: str = "") -> None:
        self._client = LambdaControlClient(base_url, timeout=http_timeout, token=token)
        self._function = function

    def measure(self, slot: Slot, since: float, until: float) -> Measurement:
        """requests = invocations + throttles, errors = errors + throttles; no version, no data."""
        version = self._client.slot_version(self._function, slot)
        if version is None:
            return Measurement(requests=0, errors=0)
        m = self._client.metrics(self._function, version, since, until)
        invocations, errors, throttles = int(m["invocations"]), int(m["errors"]), int(m["throttles"])
        return Measurement(
            requests=invocations + throttles,
            errors=errors + throttles,
            p95_ms=m["duration_p95_ms"],
            extra=(("invocations", invocations), ("throttles", throttles), ("cold_starts", m["cold_starts"])),
        )


def lambda_adapters(
    base_url: str, service: ServiceConfig, source: Source
) -> tuple[LocalLambdaCompute, LocalLambdaRouter, LocalLambdaMetrics]:
    """The three adapters of a ``kind: lambda`` service (the only code that reads its config)."""
    cfg = service.lambda_
    if cfg is None:
        raise UsageError(
            f"service {service.name} is not a Lambda function: it has no `lambda:` section",
            hint="set `kind: lambda` and add a `lambda:` section to its service.yaml",
        )
    compute = LocalLambdaCompute(
        base_url,
        service.name,
        source,
        cfg.handler,
        memory=cfg.memory,
        timeout=cfg.timeout,
        reserved=cfg.reserved_concurrency,
        provisioned=cfg.provisioned_concurrency,
        environment=dict(cfg.environment),
    )
    return compute, LocalLambdaRouter(base_url, service.name), LocalLambdaMetrics(base_url, service.name)
