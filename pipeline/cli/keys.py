"""``pipeline keys create|list|revoke SERVICE --env ENV``: the API keys of a service's edge.

parse -> wire (``App.api_keys``: the environment's platform) -> ``ApiKeys`` -> render.
The secret of a new key goes to stdout once; nothing can show it again.
"""

from __future__ import annotations

import datetime as dt
import secrets

import click
from rich.table import Table

from pipeline.app import App
from pipeline.cli.deploy import env_option, json_option, service_argument
from pipeline.console.render import emit_json, err, out
from pipeline.core.edge import ApiKey


@click.group()
def keys() -> None:
    """Create, list and revoke the API keys of a service's `api:` edge."""


@keys.command()
@service_argument
@env_option
@click.option("--name", default="", help="Name of the key (default: key-<random>).")
@click.option("--plan", default=None, help="Usage plan (default: the service's api.default_plan).")
@json_option
@click.pass_obj
def create(app: App, service: str, env_name: str, name: str, plan: str | None, as_json: bool) -> None:
    """Issue a key for SERVICE in ENV and print its secret: the only time it is shown."""
    app.writable(env_name, "create keys in")
    app.ref(service, env_name)
    issued = app.api_keys(env_name).create(service, name or f"key-{secrets.token_hex(3)}", plan)
    if as_json:
        emit_json({**issued.key.to_dict(), "secret": issued.secret})
    else:
        click.echo(issued.secret)  # plain stdout: exactly the secret, never wrapped
    key = issued.key
    err.print(f"created key {key.name} (plan {key.plan or 'none'}) for {service} in {env_name}; "
              "the secret is shown only now: send it as the x-api-key header", markup=False)


@keys.command(name="list")
@service_argument
@env_option
@json_option
@click.pass_obj
def list_(app: App, service: str, env_name: str, as_json: bool) -> None:
    """List SERVICE's keys in ENV (name, plan, hint, created, revoked); never their secrets."""
    app.ref(service, env_name)
    found = app.api_keys(env_name).list(service)
    if as_json:
        emit_json([key.to_dict() for key in found])
        return
    if not found:
        err.print(f"{service} has no keys in {env_name}: create one with "
                  f"`pipeline keys create {service} --env {env_name}`", markup=False)
        return
    table = Table("name", "plan", "hint", "created", "revoked", box=None)
    for key in found:
        table.add_row(*_row(key))
    out.print(table)


@keys.command()
@service_argument
@env_option
@click.option("--name", required=True, help="The key to revoke.")
@json_option
@click.pass_obj
def revoke(app: App, service: str, env_name: str, name: str, as_json: bool) -> None:
    """Revoke key NAME of SERVICE in ENV: its next request is refused."""
    app.writable(env_name, "revoke keys in")
    app.ref(service, env_name)
    key = app.api_keys(env_name).revoke(service, name)
    if as_json:
        emit_json(key.to_dict())
    err.print(f"revoked key {key.name} of {service} in {env_name} at {_when(key.revoked)}", markup=False)


def _row(key: ApiKey) -> tuple[str, str, str, str, str]:
    return key.name, key.plan or "-", f"{key.hint}…", _when(key.created), _when(key.revoked)


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
