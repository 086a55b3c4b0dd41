"""The plane's value objects on the wire (pure: no processes, no network)."""

from __future__ import annotations

import pytest

from pipeline.local.specs import HealthCheck, Launch, ReleaseSpec

LAUNCH = Launch(command=("python", "app.py"), cwd="services/orders", env=(("MODE", "fast"),),
                replicas=2, health=HealthCheck(path="/ready"), drain_timeout=3.0, stop_timeout=1.0)


def spec(launch: Launch = LAUNCH) -> ReleaseSpec:
    return ReleaseSpec(service="orders", environment="staging", version="1.0.0", digest="sha256:ab",
                       snapshot="/srv/releases/ab", launch=launch)


def test_a_release_spec_travels_as_one_flat_object_and_comes_back_equal() -> None:
    data = spec().to_dict()
    assert data["command"] == ["python", "app.py"] and data["env"] == {"MODE": "fast"}
    assert data["replicas"] == 2 and data["health"]["path"] == "/ready" and data["service"] == "orders"
    assert "launch" not in data
    assert ReleaseSpec.from_dict(data) == spec()


def test_a_release_spec_refuses_no_replicas_or_no_command() -> None:
    with pytest.raises(ValueError, match="replicas"):
        spec(Launch(command=("python",), replicas=0))
    with pytest.raises(ValueError, match="command"):
        spec(Launch(command=()))
