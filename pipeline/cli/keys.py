"""``pipeline keys create|list|revoke SERVICE --env ENV``: the API keys of a service's edge.

parse -> wire (``App.api_keys``: the environment's platform) -> ``ApiKeys`` -> render.
The secret of a new key goes to stdout once; nothing can show it again.

Declared keys (a plan's ``keys: [acme]`` in the ``api:`` block) are issued on their plan:
by ``pipeline bootstrap`` on AWS, by ``keys create --declared`` on any platform, or one at
a time by ``keys create --name acme`` (the declared plan is used; another ``--plan`` is
refused). ``keys list`` marks each key declared or ad-hoc and lists the declared keys not
yet issued.
"""

from __future__ import annotations

import datetime as dt
import secrets

import click
from rich.table import Table

from pipeline.app import App
from pipeline.cli.deploy import env_option, json_option, service_argument
from pipeline.console.render import emit_json, err, out
from pipeline.core.edge import ApiKey, IssuedKey
from pipeline.core.errors import UsageError


@click.group()
def keys() -> None:
    """Create, list and revoke the API keys of a service's `api:` edge."""


def _declared(app: App, service: str) -> dict[str, str]:
    """The service's declared keys and their plans."""
    api = app.project.service(service).api
    return api.declared_keys if api is not None else {}


def _plan_of(app: App, service: str, name: str, plan: str | None) -> str | None:
    """The plan a key named ``name`` gets: a declared key's own plan, else ``plan``."""
    declared = _declared(app, service).get(name)
    if declared is not None and plan is not None and plan != declared:
        raise UsageError(f"key {name} of {service} is declared on plan {declared}, not {plan}",
                         hint=f"drop --plan, or move {name} to plan {plan} in its service.yaml")
    return declared or plan


@keys.command()
@service_argument
@env_option
@click.option("--name", default="", help="Name of the key (default: key-<random>).")
@click.option("--plan", default=None, help="Usage plan (default: its declared plan, else api.default_plan).")
@click.option("--declared", is_flag=True, help="Issue every declared key not issued yet (one line each).")
@json_option
@click.pass_obj
def create(app: App, service: str, env_name: str, name: str, plan: str | None, declared: bool,
           as_json: bool) -> None:
    """Issue a key for SERVICE in ENV and print its secret: the only time it is shown."""
    app.writable(env_name, "create keys in")
    app.ref(service, env_name)
    if declared:
        if name or plan:
            raise UsageError("--declared issues the declared keys on their own plans: drop --name and --plan")
        _create_declared(app, service, env_name, as_json)
        return
    name = name or f"key-{secrets.token_hex(3)}"
    issued = app.api_keys(env_name).create(service, name, _plan_of(app, service, name, plan))
    if as_json:
        emit_json({**issued.key.to_dict(), "secret": issued.secret})
    else:
        click.echo(issued.secret)  # plain stdout: exactly the secret, never wrapped
    _created(issued, service, env_name)


def _create_declared(app: App, service: str, env_name: str, as_json: bool) -> None:
    port = app.api_keys(env_name)
    found = {key.name: key for key in port.list(service)}
    declared = _declared(app, service)
    issued = [port.create(service, name, plan) for name, plan in declared.items() if name not in found]
    for name in sorted(n for n in declared if n in found and not found[n].active):
        err.print(f"declared key {name} of {service} in {env_name} is revoked and stays so: "
                  "declare a new name to issue a replacement", markup=False)
    if as_json:
        emit_json([{**i.key.to_dict(), "secret": i.secret} for i in issued])
    for one in issued:
        if not as_json:
            click.echo(f"{one.key.name} {one.secret}")  # name, then exactly the secret
        _created(one, service, env_name)
    if not issued:
        err.print(f"every declared key of {service} in {env_name} is issued already", markup=False)


def _created(issued: IssuedKey, service: str, env_name: str) -> None:
    key = issued.key
    err.print(f"created key {key.name} (plan {key.plan or 'none'}) for {service} in {env_name}; "
              "the secret is shown only now: send it as the x-api-key header", markup=False)


@keys.command(name="list")
@service_argument
@env_option
@json_option
@click.pass_obj
def list_(app: App, service: str, env_name: str, as_json: bool) -> None:
    """List SERVICE's keys in ENV (name, plan, declared or ad-hoc, hint, created, revoked), declared
    keys not yet issued included; never their secrets."""
    app.ref(service, env_name)
    found = app.api_keys(env_name).list(service)
    declared = _declared(app, service)
    pending = [(name, plan) for name, plan in declared.items() if name not in {k.name for k in found}]
    if as_json:
        emit_json([{**key.to_dict(), "declared": key.name in declared, "issued": True} for key in found]
                  + [{"name": name, "id": None, "plan": plan, "created": None, "revoked": None, "hint": None,
                      "declared": True, "issued": False} for name, plan in pending])
        return
    if not found and not pending:
        err.print(f"{service} has no keys in {env_name}: create one with "
                  f"`pipeline keys create {service} --env {env_name}`", markup=False)
        return
    table = Table("name", "plan", "kind", "hint", "created", "revoked", box=None)
    for key in found:
        table.add_row(*_row(key, key.name in declared))
    for name, plan in pending:
        table.add_row(name, plan, "declared", "-", "not yet issued", "-")
    out.print(table)
    if pending:
        also = " (so does `pipeline bootstrap`)" if app.environment(env_name).platform == "aws" else ""
        err.print(f"{len(pending)} declared key(s) not yet issued: "
                  f"`pipeline keys create {service} --env {env_name} --declared` issues them{also}",
                  markup=False)


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


def _row(key: ApiKey, declared: bool) -> tuple[str, str, str, str, str, str]:
    return (key.name, key.plan or "-", "declared" if declared else "ad-hoc", f"{key.hint}…",
            _when(key.created), _when(key.revoked))


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
