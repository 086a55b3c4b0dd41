"""``pipeline local up | down | status``: the embedded local platform's one background process.

``up`` starts the plane (or finds the running one) and opens a router for every local
environment of ``pipeline.yaml``; ``down`` stops it with every replica and worker;
``status`` shows environments, services, slots, replicas and weights (``--json`` too).
Data goes to stdout, errors to stderr with the exit code of their class.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pipeline.app import App
from pipeline.console.render import print_error
from pipeline.core.errors import PipelineError
from pipeline.local.plane.control_client import PlaneClient
from pipeline.local.plane.lifecycle import PlaneInfo, ensure_plane, live_plane, state_dir_of, stop_plane
from pipeline.project_root import PROJECT_FILE, nearest_root

T = TypeVar("T")

root_option = click.option(
    "--root", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Project root (default: the nearest folder with a pipeline.yaml, else the current one).",
)


@click.group("local")
def local() -> None:
    """Run the local platform: routers, replicas and the Lambda runtime in one background process."""


@local.command("up")
@root_option
def up(root: Path | None) -> None:
    """Start the local plane (a running one is reused) and open each local environment's router."""
    root = project_root(root)
    wanted = _guard(lambda: local_environments(root))
    info, started = _guard(lambda: ensure_plane(state_dir_of(root)))
    envs = _guard(lambda: open_environments(info, wanted))
    click.echo(f"local plane {'started' if started else 'already running'}: pid {info.pid}, "
               f"control API {info.url}")
    for name, port in envs:
        click.echo(f"  {name}: http://127.0.0.1:{port}  (test route http://127.0.0.1:{port + 1})")


@local.command("down")
@root_option
def down(root: Path | None) -> None:
    """Stop the local plane, every replica and every Lambda worker. Idempotent."""
    root = project_root(root)
    report = _guard(lambda: stop_plane(state_dir_of(root)))
    if not report.was_running:
        click.echo("no local plane was running")
        return
    how = "stopped" if report.graceful else "killed (it did not stop in time)"
    extra = f"; killed {report.killed} leftover process(es)" if report.killed else ""
    click.echo(f"local plane {how}{extra}")


@local.command("status")
@root_option
@click.option("--json", "as_json", is_flag=True, help="Print the plane's status as JSON.")
def status(root: Path | None, as_json: bool) -> None:
    """Show environments, services, slots, replicas and weights of the running plane."""
    root = project_root(root)
    info = live_plane(state_dir_of(root))
    if info is None:
        click.echo(json.dumps({"running": False}) if as_json else "local plane is not running "
                   "(start it with `pipeline local up`)")
        return
    data = _guard(lambda: PlaneClient.for_url(info.url, token=info.token).call("GET", "/v1/status"))
    if as_json:
        click.echo(json.dumps({"running": True, **data}, indent=2))
        return
    click.echo("\n".join(render_status(data)))


def project_root(root: Path | None) -> Path:
    """``--root``, else the main command's ``--root``, else the current folder; then the
    nearest folder at or above it holding a pipeline.yaml (itself if there is none)."""
    if root is None:
        parent = click.get_current_context().obj
        root = parent.root_hint if isinstance(parent, App) else Path(".")
    return nearest_root(Path(root)) or Path(root).resolve()


def local_environments(root: Path) -> list[tuple[str, int]]:
    """(name, router port) of every local environment in ``root/pipeline.yaml`` (none if absent).

    Raises ConfigError when the project's configuration is invalid.
    """
    if not (Path(root) / PROJECT_FILE).is_file():
        return []
    from pipeline.config import load_project

    project = load_project(Path(root))
    return [
        (name, env.local.port)
        for name, env in sorted(project.config.environments.items())
        if env.platform == "local" and env.local is not None
    ]


def open_environments(info: PlaneInfo, environments: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Open the routers of ``environments`` on the plane (idempotent)."""
    client = PlaneClient.for_url(info.url, token=info.token)
    for name, port in environments:
        client.call("PUT", f"/v1/envs/{name}", {"port": port})
    return environments


def render_status(data: dict[str, Any]) -> list[str]:
    """The plane's status as indented lines: environment, service, slot, replica."""
    lines = [f"local plane {data['id']} (pid {data['pid']})"]
    if not data["environments"]:
        lines.append("no environment is served yet: `pipeline deploy SERVICE --env ENV` opens one")
    for name, env in data["environments"].items():
        test_route = f"http://127.0.0.1:{env['test_port']}"
        lines.append(f"{name}: http://127.0.0.1:{env['port']}  (test route {test_route})")
        for service, svc in env["services"].items():
            weights = svc["weights"]
            split = f"blue {weights['blue']}% / green {weights['green']}%" if weights else "no weights set"
            lines.append(f"  {service}  {svc['path']} ({svc['kind']}, priority {svc['priority']})  {split}")
            for slot, info in svc["slots"].items():
                lines.append("    " + _slot_line(slot, info, slot == svc["test_slot"]))
                lines.extend("      " + _replica_line(r) for r in info["replicas"])
    spans = data.get("router_spans")
    if spans and (spans["queued"] or spans["dropped"]):
        lines.append(f"router spans: {spans['written']} stored, {spans['queued']} waiting (stored once "
                     f"traffic is quiet), {spans['dropped']} dropped")
    return lines


def _slot_line(slot: str, info: dict[str, Any], test: bool) -> str:
    label = f"{slot} (test route)" if test else slot
    traffic = f"{info.get('requests', 0)} requests, {info.get('errors', 0)} 5xx"
    if "version" not in info:
        return f"{label}: stopped; {traffic}"
    release = f"{info['version']} {info['digest'][7:19]}"
    return f"{label}: {release}  {info['healthy']}/{info['desired']} healthy; {traffic}"


def _replica_line(r: dict[str, Any]) -> str:
    text = f"replica {r['index']}: {r['state']}, pid {r['pid'] or '-'}, port {r['port'] or '-'}"
    if r["restarts"]:
        text += f", {r['restarts']} restart(s), last exit {r['last_exit']}"
    if r["last_error"]:
        text += f" ({r['last_error']})"
    if r.get("failure"):
        text += f"\n        cannot start: {r['failure']}"
    return text


def _guard(action: Callable[[], T]) -> T:
    """Run ``action``; a PipelineError becomes its message on stderr and its exit code."""
    try:
        return action()
    except PipelineError as exc:
        print_error(exc)
        raise SystemExit(exc.exit_code) from exc
