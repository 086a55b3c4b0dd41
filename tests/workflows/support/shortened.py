"""Edits that make the throwaway Dev and Ops projects fast: short strategies for orders,
pauses capped at a second, synthetic traffic for every analysis, free ports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

FAST_ENVIRONMENT = {"max_pause": "1s", "analysis": {"traffic": {"enabled": True, "rate": 20}}}


def edit_yaml(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def shorten_orders(service: dict[str, Any]) -> None:
    """orders with one replica, a short canary and a short load stage."""
    service["local"]["replicas"] = 1
    service["deploy"] = {
        "strategy": "canary",
        "steps": [{"set_weight": 50}, {"pause": "1s"}, {"analyze": {}}],
        "analysis": {
            "interval": "1s", "window": "3s", "min_requests": 5,
            "checks": [{"metric": "error_rate", "max": 0.05}],
            "failure_limit": 0, "inconclusive_limit": 4, "consecutive_error_limit": 2,
        },
        "keep_previous": "0s",
        "timeouts": {"ready": "60s"},
    }
    service["load"] |= {"users": 4, "spawn_rate": 4, "duration": "2s", "thresholds": {"fail_ratio": 0.05}}


def single_organisation(project: dict[str, Any], org: str, team: str) -> None:
    """The project's Ops approve prod through GitHub (single-organisation mode, and Ops)."""
    project["organisations"]["ops"]["github"] = {"org": org, "team": team}


def fast_environments(project: dict[str, Any], ports: dict[str, int]) -> None:
    project["defaults"]["timeouts"] |= {"poll": "200ms", "verify": "20s"}
    for name, env in project["environments"].items():
        if name in ports:
            env["local"]["port"] = ports[name]
            env.update(json.loads(json.dumps(FAST_ENVIRONMENT)))
            if env.get("requires", {}).get("approval"):
                env["analysis"]["on_inconclusive"] = "rollback"
