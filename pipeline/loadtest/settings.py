"""What a load run needs: the locustfile, the shape of the load and the gate thresholds.

Plain frozen values, so the runner works with or without a loaded project; the one bridge
from ``service.yaml``'s ``load:`` section is ``settings_from_config``. Units: seconds for
durations, milliseconds for latency, requests per second for throughput, and a fraction
(0..1) for the failure ratio.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.core.errors import UsageError
from pipeline.loadtest.ramp import Ramp


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Gate limits; ``None`` means "not checked".

    ``fail_ratio`` is failed / all requests (0..1), ``p95_ms`` the 95th percentile response
    time in milliseconds (upper bound), ``min_rps`` the lowest acceptable throughput.
    """

    fail_ratio: float | None = None
    p95_ms: float | None = None
    min_rps: float | None = None

    def __post_init__(self) -> None:
        if self.fail_ratio is not None and not 0 <= self.fail_ratio <= 1:
            raise ValueError(f"fail_ratio must be within 0..1, got {self.fail_ratio}")
        for name in ("p95_ms", "min_rps"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")

    def to_dict(self) -> dict[str, float | None]:
        return {"fail_ratio": self.fail_ratio, "p95_ms": self.p95_ms, "min_rps": self.min_rps}


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """One load run: ``users`` simulated users, started at ``spawn_rate`` per second, for
    ``duration`` seconds (at least 1), using ``user_class`` from ``locustfile`` (or every
    user class in it when None). ``locustfile`` is relative to the project root unless
    absolute. With a ``ramp`` (step load) the ramp sets the users step by step: ``users``
    must be its top step and ``duration`` its length."""

    locustfile: Path
    users: int = 10
    spawn_rate: float = 10.0
    duration: float = 30.0
    user_class: str | None = None
    thresholds: Thresholds = Thresholds()
    ramp: Ramp | None = None

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError(f"users must be at least 1, got {self.users}")
        if self.ramp is not None and (self.users, self.duration) != (self.ramp.stop, self.ramp.duration):
            raise ValueError(
                f"with a ramp, users and duration follow it ({self.ramp.stop} users at the top step, "
                f"{self.ramp.duration:g} s in all), got {self.users} users for {self.duration:g} s: "
                "change load.ramp instead"
            )
        if self.spawn_rate <= 0:
            raise ValueError(f"spawn_rate must be positive, got {self.spawn_rate}")
        if self.duration < 1:
            raise ValueError(f"duration must be at least 1 second, got {self.duration}")

    def override(
        self,
        *,
        users: int | None = None,
        spawn_rate: float | None = None,
        duration: float | None = None,
        user_class: str | None = None,
        thresholds: Thresholds | None = None,
    ) -> LoadSettings:
        """A copy with the given values replaced (command-line overrides); ``UsageError``
        when a value is out of range."""
        changes: dict[str, Any] = {
            key: value
            for key, value in {
                "users": users,
                "spawn_rate": spawn_rate,
                "duration": duration,
                "user_class": user_class,
                "thresholds": thresholds,
            }.items()
            if value is not None
        }
        try:
            return replace(self, **changes)
        except ValueError as exc:
            raise UsageError(f"invalid load setting: {exc}", hint="see `pipeline loadtest --help`") from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "locustfile": str(self.locustfile),
            "users": self.users,
            "spawn_rate": self.spawn_rate,
            "duration": self.duration,
            "user_class": self.user_class,
            "thresholds": self.thresholds.to_dict(),
            "ramp": self.ramp.to_dict() if self.ramp is not None else None,
        }


def settings_from_config(load: Any) -> LoadSettings | None:
    """``LoadSettings`` from a ``service.yaml`` ``load:`` section (``pipeline.config.LoadConfig``);
    None when the service has no load section. The config layer has already validated it."""
    if load is None:
        return None
    limits = load.thresholds
    ramp = _ramp(load.ramp)
    return LoadSettings(
        locustfile=Path(load.locustfile),
        users=ramp.stop if ramp else int(load.users),
        spawn_rate=float(load.spawn_rate),
        duration=ramp.duration if ramp else float(load.duration),
        user_class=load.user_class,
        thresholds=Thresholds(
            fail_ratio=_optional_float(limits.fail_ratio),
            p95_ms=_optional_float(limits.p95_ms),
            min_rps=_optional_float(limits.min_rps),
        ),
        ramp=ramp,
    )


def _ramp(ramp: Any) -> Ramp | None:
    """``Ramp`` from ``load.ramp`` (``pipeline.config.LoadRamp``), already validated."""
    if ramp is None:
        return None
    return Ramp(
        start=int(ramp.start),
        stop=int(ramp.to),
        step=int(ramp.step),
        step_duration=float(ramp.step_duration),
        min_knee=None if ramp.min_knee is None else int(ramp.min_knee),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
