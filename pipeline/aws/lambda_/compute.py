"""``LambdaCompute``: the Compute port for a Lambda function, by published versions.

The two slots of a Lambda service are two *slot aliases* (``blue`` and ``green``), each on
the version of the release it runs; the alias users call (``live``) routes between those
versions (see ``LambdaAliasRouter``). Slot aliases persist in AWS which version each slot
holds, so a resumed deployment (another process, after a crash) finds the same mapping
(``pipeline.aws.lambda_.slots``). The slot alias's description names the release digest.

- ``provision(slot, release)`` finds or publishes the release's version: a version already
  published for this release digest, or one with the same ``CodeSha256`` and settings, is
  reused (so an unchanged function publishes no new version); otherwise the
  code and configuration of ``$LATEST`` are updated, ``LastUpdateStatus`` is polled with the
  injected clock until Successful, and a version is published (``CodeSha256`` and the
  ``RevisionId`` read pinned; while Lambda answers ``ResourceConflictException`` or
  ``PreconditionFailedException`` the update is waited out again and the publish retried).
  Then it requests provisioned concurrency on the *version* when configured (refused
  before any allocation when two versions' worth cannot fit the function's reservation or
  the account's unreserved pool) and points the slot alias at it. Idempotent. The
  function's reserved concurrency is ``pipeline bootstrap``'s: it caps every version, the
  live one too, so a deployment only warns when it differs from the configuration.
- ``health(slot, release)`` is ready only when the slot alias is on this release, the
  version is Active, its smoke events passed, its provisioned concurrency is READY (or,
  without provisioned concurrency, N concurrent warm-up invocations ran) and the
  throttling guard did not fail. A failed smoke test, a FAILED allocation or a failing
  guard is sticky: the slot stays not ready (detail says why) until it is provisioned
  again, so the engine rolls back before any weight moves.
- ``scale_down(slot)`` releases the provisioned concurrency of the slot's version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pipeline.aws.lambda_.api import Conflict, FunctionSettings, FunctionVersion, LambdaApi
from pipeline.aws.lambda_.concurrency import ConcurrencyApi, GuardResult, reservation_note, throttle_guard
from pipeline.aws.lambda_.package import Package, ZipPackage
from pipeline.aws.lambda_.readiness import smoke_test, warm_up
from pipeline.aws.lambda_.slots import SLOT_ALIASES, SlotVersions
from pipeline.aws.lambda_.staging import CodeBucket, upload_code
from pipeline.core.errors import PlatformError, TransientPlatformError
from pipeline.core.model import Release, Slot, SlotHealth
from pipeline.core.ports import Clock

__all__ = ["LambdaCompute", "Readiness"]

PUBLISH_ATTEMPTS = 3  # PublishVersion tries; between two, $LATEST's update is waited out


@dataclass(frozen=True, slots=True)
class Readiness:
    """What a new version must pass before traffic (counts are concurrent executions)."""

    smoke_events: tuple[object, ...] = ()
    route: str = "/*"  # the service's path pattern: the default path of smoke request specs
    provisioned_concurrency: int | None = None
    warm_invocations: int = 4
    reserved_concurrency: int | None = None
    expected_peak_rps: float | None = None
    throttle_guard: Literal["warn", "fail"] = "warn"


@dataclass
class _Checks:
    """Progress of one version through the pre-traffic checks (memoised per process)."""

    smoke: str | None = None
    warmed: bool = False
    guard: GuardResult | None = None
    failure: str | None = None
    unsupported: str = ""  # why provisioned concurrency is unavailable, when it is
    warnings: list[str] = field(default_factory=list)


class LambdaCompute:
    """Compute port over one function's versions and slot aliases."""

    def __init__(
        self,
        api: LambdaApi,
        concurrency: ConcurrencyApi,
        clock: Clock,
        *,
        settings: FunctionSettings,
        package_for: Callable[[Release], Package],
        readiness: Readiness = Readiness(),
        p95_ms: Callable[[], float | None] = lambda: None,
        test_endpoint: Callable[[Slot], str] | None = None,
        slots: SlotVersions | None = None,
        update_timeout: float = 300.0,
        poll: float = 1.0,
        bucket: CodeBucket | None = None,
        warm_chain: Callable[[], str] = lambda: "",
    ) -> None:
        self.api = api
        self.warm_chain = warm_chain  # warms what the service calls, deepest first; says what it did
        self.slots = slots or SlotVersions(api)
        self.concurrency = concurrency
        self.clock = clock
        self.settings = settings
        self.package_for = package_for
        self.readiness = readiness
        self.p95_ms = p95_ms
        self.test_endpoint = test_endpoint
        self.update_timeout = update_timeout
        self.poll = poll
        self.bucket = bucket
        self.warnings: list[str] = []
        self._checks: dict[str, _Checks] = {}

    # --- the port ------------------------------------------------------------------

    def provision(self, slot: Slot, release: Release) -> None:
        version = self.version_for(release)
        r = self.readiness
        needs_reserved = r.reserved_concurrency is not None or bool(r.provisioned_concurrency)
        reserved = self.concurrency.reserved() if needs_reserved else None
        note = reservation_note(self.api.function, reserved, r.reserved_concurrency)
        if note and note not in self.warnings:
            self.warnings.append(note)  # bootstrap applies it: it caps the live version too
        wanted = r.provisioned_concurrency
        if wanted:
            current = self.concurrency.provisioned(version.version)
            stale = current is not None and (current.requested != wanted or current.status == "FAILED")
            if current is None or (current.status != "UNSUPPORTED" and stale):
                self.concurrency.require_budget(wanted, reserved)  # two versions hold it in a shift
                self.concurrency.provision(version.version, wanted)
        self._checks.pop(version.version, None)
        self.slots.point(slot, version.version, _alias_note(release))

    def health(self, slot: Slot, release: Release) -> SlotHealth:
        desired = self._desired()
        alias = self.api.alias(SLOT_ALIASES[slot])
        if alias is None or release.digest not in alias.description:
            why = f"alias {SLOT_ALIASES[slot]} is not on {release.short} yet"
            return SlotHealth(0, desired, 0, False, why)
        label = f"version {alias.version}"
        checks = self._checks.setdefault(alias.version, _Checks())
        if checks.failure is None:
            state = self.api.version(alias.version).state
            if state == "Pending":
                return SlotHealth(0, desired, 0, True, f"{label}: still Pending")
            checks.failure = self._check(alias.version, state, checks)
        waiting = None if checks.failure else self._provisioning(alias.version, checks)
        if checks.failure is not None or waiting is not None:
            return SlotHealth(0, desired, 0, True, f"{label}: {checks.failure or waiting}")
        self._warm(alias.version, checks)
        notes = [label, checks.smoke or "", *checks.warnings]
        return SlotHealth(desired, desired, desired, True, "; ".join(n for n in notes if n))

    def scale_down(self, slot: Slot) -> None:
        version = self.slots.version(slot)
        if version is not None:
            self.concurrency.release(version)
            self._checks.pop(version, None)

    def endpoint(self, slot: Slot) -> str:
        if self.test_endpoint is None:
            raise PlatformError(
                f"no test route for {self.api.function}: the platform was built without one",
                hint="run `pipeline bootstrap` for the service so its HTTP API has per-slot stages",
            )
        return self.test_endpoint(slot)

    # --- versions ------------------------------------------------------------------

    def version_for(self, release: Release) -> FunctionVersion:
        """The published version running ``release``: reused when one exists, else published."""
        versions = self.api.versions()
        for version in reversed(versions):
            if release.digest in version.description and version.carries(self.settings):
                return version
        package = self.package_for(release)
        if isinstance(package, ZipPackage):
            for version in reversed(versions):
                if version.code_sha256 == package.code_sha256 and version.carries(self.settings):
                    return version
        return self._publish(release, package)

    def _publish(self, release: Release, package: Package) -> FunctionVersion:
        latest = self.wait_updated()
        if not isinstance(package, ZipPackage) or latest.code_sha256 != package.code_sha256:
            # size-checked, over 50 MB through S3; RevisionId: only over the $LATEST just read
            upload_code(self.api, package, self.bucket, latest.revision_id)
            latest = self.wait_updated()
        if not latest.carries(self.settings):
            self.api.update_settings(self.settings, latest.revision_id)
            latest = self.wait_updated()
        if isinstance(package, ZipPackage) and latest.code_sha256 != package.code_sha256:
            raise TransientPlatformError(
                f"publishing {release.short} of {self.api.function} failed: $LATEST changed under us",
                hint="another deployment is updating the function; wait for it, then retry",
            )
        note = f"pipeline {release.version[:40]} {release.digest} {release.commit[:12]}"
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                # RevisionId: publish exactly the $LATEST just checked, never a later update
                return self.api.publish(latest.code_sha256, note, latest.revision_id)
            except Conflict:
                if attempt == PUBLISH_ATTEMPTS:
                    raise
            latest = self.wait_updated()  # an update in progress, or $LATEST changed: read again
            if not latest.carries(self.settings) or (
                isinstance(package, ZipPackage) and latest.code_sha256 != package.code_sha256
            ):
                raise TransientPlatformError(
                    f"publishing {release.short} of {self.api.function} failed: $LATEST changed under us",
                    hint="another deployment is updating the function; wait for it, then retry",
                )
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def wait_updated(self) -> FunctionVersion:
        """Poll ``$LATEST`` until its last update finished (injected clock, own deadline)."""
        deadline = self.clock.now() + self.update_timeout
        while True:
            latest = self.api.latest()
            if latest.last_update_status == "Failed":
                raise PlatformError(
                    f"updating {self.api.function} failed: {latest.last_update_reason or 'no reason given'}",
                    hint="fix the function's package or settings, then deploy again",
                )
            if latest.state in ("Active", "Inactive") and latest.last_update_status in ("", "Successful"):
                return latest  # an Inactive (idle) function is reactivated by the next update
            if self.clock.now() >= deadline:
                raise TransientPlatformError(
                    f"{self.api.function} is still updating after {self.update_timeout:g}s "
                    f"(state {latest.state}, last update {latest.last_update_status})",
                    hint="Lambda is slow to apply the update; the step is retried",
                )
            self.clock.sleep(self.poll)

    # --- pre-traffic checks ----------------------------------------------------------

    def _desired(self) -> int:
        return self.readiness.provisioned_concurrency or max(1, self.readiness.warm_invocations)

    def _check(self, version: str, state: str, checks: _Checks) -> str | None:
        """The sticky checks, each run once per version: state, smoke events, throttling guard."""
        if state not in ("Active", "Inactive"):  # an idle (Inactive) version wakes when invoked
            return f"version state is {state}"
        if checks.smoke is None:
            smoke = smoke_test(self.api, version, self.readiness.smoke_events, self.readiness.route)
            if not smoke.passed:
                return smoke.detail
            checks.smoke = smoke.detail
        if checks.guard is None:
            r = self.readiness
            checks.guard = throttle_guard(
                expected_peak_rps=r.expected_peak_rps,
                p95_ms=self.p95_ms() if r.expected_peak_rps and r.reserved_concurrency else None,
                reserved=r.reserved_concurrency,
                mode=r.throttle_guard,
            )
            if checks.guard.message:
                if not checks.guard.passed:
                    return checks.guard.message
                self._warn(checks, checks.guard.message)
        return None

    def _provisioning(self, version: str, checks: _Checks) -> str | None:
        """Why provisioned concurrency keeps the version from traffic yet, or None.

        A FAILED allocation becomes the version's sticky failure.
        """
        wanted = self.readiness.provisioned_concurrency
        if not wanted:
            return None
        status = self.concurrency.provisioned(version)
        if status is None:
            self.concurrency.provision(version, wanted)
            return f"provisioned concurrency 0/{wanted} requested"
        if status.status == "UNSUPPORTED":
            checks.unsupported = status.reason
            return None
        if status.status == "READY":
            return None
        if status.status == "FAILED":
            checks.failure = f"provisioned concurrency FAILED: {status.reason or 'no reason given'}"
            return checks.failure
        return f"provisioned concurrency {status.allocated}/{status.requested} allocated ({status.status})"

    def _warm(self, version: str, checks: _Checks) -> None:
        """Warm-up of the dependency chain, then invocations of the version, once (not the
        version's when provisioned concurrency keeps it warm).

        Where provisioned concurrency is configured but unavailable, as many invocations run
        as environments were wanted, and a warning says so.
        """
        if checks.warmed:
            return
        checks.warmed = True
        chain = self.warm_chain()  # the dependencies first: no hop is cold after the shift
        if chain:
            checks.warnings.insert(0, chain)
        count = self.readiness.warm_invocations
        if self.readiness.provisioned_concurrency:
            if not checks.unsupported:
                return  # provisioned concurrency keeps the version warm
            why = f"provisioned concurrency unavailable ({checks.unsupported}): warmed by invocations"
            self._warn(checks, why)
            count = self.readiness.provisioned_concurrency
        result = warm_up(self.api, version, count)
        if result.requested:
            note = f"warmed {result.succeeded}/{result.requested} environments"
            if result.errors:
                note += f" (errors: {'; '.join(result.errors)[:200]})"
            checks.warnings.insert(0, note)

    def _warn(self, checks: _Checks, message: str) -> None:
        checks.warnings.append(message)
        if message not in self.warnings:
            self.warnings.append(message)


def _alias_note(release: Release) -> str:
    return f"pipeline slot: {release.version[:60]} {release.digest}"
