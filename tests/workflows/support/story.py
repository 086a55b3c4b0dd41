"""Reading the outcome of a run: which release serves an environment, which succeeded
there, and the promotion pull requests on the fake GitHub API."""

from __future__ import annotations

import json
from typing import Any

from tests.workflows.support.world import OPS_APP_TOKEN, OPS_REPO, World


def serving(world: World, service: str, env: str) -> str:
    """The digest ``service`` serves in ``env`` now (``pipeline status --json``)."""
    project = world.ops / "pipeline.yaml" if env == "prod" else None
    rows = json.loads(world.pipeline("status", service, "--env", env, "--json", project=project).stdout)
    (row,) = [r for r in rows if r["environment"] == env]
    if row["phase"] == "succeeded":
        return str(row["release"]["digest"])
    return str((row.get("stable") or {}).get("digest", ""))


def succeeded(world: World, service: str, env: str) -> set[str]:
    """Every digest that completed a deployment of ``service`` in ``env``."""
    return {r["digest"] for r in world.history(service, env) if r.get("phase") == "succeeded"}


def pulls(world: World) -> dict[str, dict[str, Any]]:
    """The Ops repository's pull requests on the fake, by number."""
    state = world.github.call("GET", "/_fake/state")
    return dict(state["repos"][OPS_REPO].get("pulls") or {})


def open_pull_numbers(world: World, service: str) -> list[int]:
    """The open promotion pull requests of ``service``."""
    head = f"promote/{service}"
    return [int(n) for n, p in pulls(world).items() if p["head"] == head and p["state"] == "open"]


def release_file(world: World, ref: str, service: str) -> dict[str, Any]:
    files = world.github.call("GET", f"/_fake/repos/{OPS_REPO}/files?ref={ref}")
    return dict(json.loads(files[f"releases/{service}.json"]))


def open_release_pull(world: World, service: str, release: dict[str, Any]) -> int:
    """A promotion pull request proposing ``release`` (as handoff would), by the Ops App."""
    branch = f"promote/{service}"
    world.github.call("POST", f"/_fake/repos/{OPS_REPO}/commits", {
        "branch": branch, "files": {f"releases/{service}.json": json.dumps(release, indent=2) + "\n"},
        "message": f"Promote {service}", "author": "shop-ops[bot]",
    })
    pull = world.github.call("POST", f"/repos/{OPS_REPO}/pulls",
                             {"head": branch, "base": "main", "title": f"Promote {service}"},
                             token=OPS_APP_TOKEN)
    return int(pull["number"])


def review_and_merge(world: World, number: int, reviewer: str) -> None:
    world.github.call("POST", f"/_fake/repos/{OPS_REPO}/pulls/{number}/reviews",
                      {"user": reviewer, "state": "APPROVED"})
    world.github.call("POST", f"/_fake/repos/{OPS_REPO}/pulls/{number}/merge", {"by": reviewer})
