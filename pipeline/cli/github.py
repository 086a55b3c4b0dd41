"""GitHub API commands: ``handoff``, ``approval github-pr|github-run``, ``deployment-status``.

Every call goes to ``$GITHUB_API_URL`` (default https://api.github.com) with the token in
``$GITHUB_TOKEN`` or the variable named by ``--token-env``. Values a later workflow step
needs are printed with ``--json`` and written with ``--github-output``; progress goes to
stderr. See docs/github.md for the permissions each command needs.
"""

from __future__ import annotations

import datetime as dt
import os
import re

import click

from pipeline import operations as ops
from pipeline import promotion
from pipeline.app import App
from pipeline.cli.outputs import github_output_option, write_github_output
from pipeline.console.render import ConsoleSink, emit_json, err
from pipeline.core.errors import PromotionRefused, UsageError
from pipeline.core.model import Release, ServiceRef
from pipeline.github.approval import Approver, VerifiedApproval, verify_pull, verify_run
from pipeline.github.handoff import HandoffRequest, hand_off
from pipeline.github.http import GitHubHttp, GitHubSettings
from pipeline.github.models import RepoName
from pipeline.github.release_file import ReleaseFile
from pipeline.github.rest import GitHubApi
from pipeline.github.statuses import STATES, report

token_option = click.option(
    "--token-env",
    default="GITHUB_TOKEN",
    show_default=True,
    metavar="NAME",
    help="Environment variable that holds the GitHub token.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
_EVIDENCE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9 _.-]{0,40})=(https?://\S+)$")


def _connect(token_env: str) -> GitHubHttp:
    return GitHubHttp(GitHubSettings.from_env(token_env))


def _emit(values: dict[str, object], as_json: bool, github_output: bool) -> None:
    if as_json:
        emit_json(values)
    if github_output:
        write_github_output(values)


def _say(text: str) -> None:
    err.print(text, markup=False, soft_wrap=True)


# --- handoff -----------------------------------------------------------------------


def _evidence(pairs: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    links = []
    for pair in pairs:
        match = _EVIDENCE.fullmatch(pair)
        if not match:
            raise UsageError(
                f"--evidence {pair!r} is not NAME=URL", hint="e.g. --evidence 'load test=https://...'"
            )
        links.append((match.group(1), match.group(2)))
    return tuple(links)


def _deployment_of(app: App, ref: ServiceRef, digest: str) -> str:
    """The id of the newest deployment that made ``digest`` succeed in ``ref``'s environment."""
    for record in reversed(app.store(ref.environment).history(ref, limit=100_000)):
        if record.action == ops.SUCCEEDED and record.digest == digest:
            return record.deployment
    return ""


@click.command()
@click.argument("service")
@click.option("--from", "source", required=True, help="Environment the release passed (e.g. staging).")
@click.option("--release", "wanted", required=True, help="The digest (or an image reference with it).")
@click.option("--ops-repo", required=True, metavar="OWNER/REPO", help="The Ops organisation's repository.")
@click.option("--base", default="main", show_default=True, help="The Ops repository's production branch.")
@click.option("--evidence", multiple=True, metavar="NAME=URL", help="A link shown in the PR (repeatable).")
@token_option
@json_option
@github_output_option
@click.pass_obj
def handoff(
    app: App,
    service: str,
    source: str,
    wanted: str,
    ops_repo: str,
    base: str,
    evidence: tuple[str, ...],
    token_env: str,
    as_json: bool,
    github_output: bool,
) -> None:
    """Open or update SERVICE's promotion pull request in the Ops repository.

    The release must have succeeded in --from. The pull request changes
    releases/SERVICE.json on branch promote/SERVICE; proposing the same digest again
    changes nothing. GitHub outputs: pr_number, pr_url, changed.
    """
    repo = RepoName.parse(ops_repo, option="--ops-repo")
    links = _evidence(evidence)
    settings = GitHubSettings.from_env(token_env)
    ref = app.ref(service, source)
    release = promotion.promotable(app.context(source, ConsoleSink()), service, source, wanted)
    file = ReleaseFile(
        service=service,
        digest=release.digest,
        version=release.version,
        commit=release.commit,
        image=release.image,
        source_repo=os.environ.get("GITHUB_REPOSITORY", ""),
        source_environment=source,
        deployment=_deployment_of(app, ref, release.digest),
        evidence=links,
        handed_off_at=dt.datetime.fromtimestamp(app.clock.now(), tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    server = os.environ.get("GITHUB_SERVER_URL") or "https://github.com"
    with GitHubHttp(settings) as http:
        api = GitHubApi.over(http)
        result = hand_off(api.contents, api.pulls, HandoffRequest(repo, base, file, server))
    _say(f"{service} {release.short} handed off to {repo}: {result.note} {result.pr_url}".rstrip())
    values: dict[str, object] = {
        "pr_number": result.pr_number or "",
        "pr_url": result.pr_url,
        "changed": result.changed,
        "digest": release.digest,
        "version": release.version,
    }
    _emit(values, as_json, github_output)


# --- approvals ---------------------------------------------------------------------


@click.group()
def approval() -> None:
    """Record an Ops approval as GitHub recorded it (a PR review or a run approval)."""


def _approver(app: App, env_name: str) -> Approver:
    app.writable(env_name, "record an approval for")
    req = app.requirements(env_name)
    if not req.approval:
        raise UsageError(
            f"{env_name} requires no approval: there is nothing to record",
            hint=f"add `requires: {{approval: ORGANISATION}}` to environments.{env_name} in pipeline.yaml",
        )
    org = app.project.config.organisations[req.approval].github
    if org is None:
        raise UsageError(
            f"organisation {req.approval} has no `github:` org to check reviewers against",
            hint=f"add `github: {{org: NAME, team: SLUG}}` to organisations.{req.approval} (docs/config.md)",
        )
    return Approver(req.approval, org.org, org.team)


def _record(app: App, env_name: str, found: VerifiedApproval) -> None:
    ctx = app.context(env_name, ConsoleSink())
    ref = ServiceRef(found.release.service, env_name)
    new = promotion.approve_verified(
        ctx, ref, found.release, found.organisation, reviewer=found.reviewer, url=found.url, source="github"
    )
    state = "recorded" if new else "already recorded"
    _say(
        f"approval {state}: {found.reviewer} ({found.organisation}) approved {found.release.short} "
        f"of {ref.service} for {env_name}: {found.url}"
    )


def _values(found: VerifiedApproval) -> dict[str, object]:
    return {
        **found.release.to_dict(),
        "source_repo": found.source_repo,
        "reviewer": found.reviewer,
        "url": found.url,
    }


@approval.command("github-pr")
@click.option("--repo", "repo_name", required=True, metavar="OWNER/REPO", help="The Ops repository.")
@click.option("--pr", "number", required=True, type=click.IntRange(min=1), help="The merged promotion PR.")
@click.option("--env", "env_name", required=True, help="The environment the approval is for.")
@click.option("--release", "wanted", default="", help="Refuse unless the PR approved this digest.")
@token_option
@json_option
@github_output_option
@click.pass_obj
def github_pr(
    app: App,
    repo_name: str,
    number: int,
    env_name: str,
    wanted: str,
    token_env: str,
    as_json: bool,
    github_output: bool,
) -> None:
    """Record the approving review of a merged promotion pull request (exit 5 if none is valid).

    GitHub outputs: service, digest, version, commit, image, source_repo, reviewer, url.
    """
    repo = RepoName.parse(repo_name)
    approver = _approver(app, env_name)
    with _connect(token_env) as http:
        api = GitHubApi.over(http)
        digest = wanted.rsplit("@", 1)[-1]
        found = verify_pull(api.contents, api.pulls, api.approvals, repo, number, approver, digest=digest)
    _record(app, env_name, found)
    _emit(_values(found), as_json, github_output)


def _run_release(app: App, service: str, env_name: str, digest: str, head_sha: str) -> Release:
    """The release ``digest`` names: it must have passed what ``env_name`` requires."""
    passed = app.requirements(env_name).passed
    ctx = app.context(env_name, ConsoleSink())
    refusals: list[PromotionRefused] = []
    for source in reversed(passed):
        try:
            return promotion.promotable(ctx, service, source, digest)
        except PromotionRefused as exc:
            refusals.append(exc)
    if refusals:
        raise refusals[0]
    return Release(service, digest[7:19], digest, head_sha)


@approval.command("github-run")
@click.option("--repo", "repo_name", required=True, metavar="OWNER/REPO", help="The repository of the run.")
@click.option("--run-id", required=True, type=click.IntRange(min=1), help="The workflow run (github.run_id).")
@click.option("--env", "env_name", required=True, help="The environment (= the GitHub environment).")
@click.option("--service", required=True, help="The service being promoted.")
@click.option("--release", "wanted", required=True, help="The digest the approval binds to.")
@token_option
@json_option
@github_output_option
@click.pass_obj
def github_run(
    app: App,
    repo_name: str,
    run_id: int,
    env_name: str,
    service: str,
    wanted: str,
    token_env: str,
    as_json: bool,
    github_output: bool,
) -> None:
    """Record the approval of a run's deployment to a protected environment (single-organisation
    mode; exit 5 if there is none by a member). GitHub outputs as for github-pr."""
    repo = RepoName.parse(repo_name)
    approver = _approver(app, env_name)
    app.ref(service, env_name)
    digest = wanted.rsplit("@", 1)[-1]
    with _connect(token_env) as http:
        run, entry = verify_run(GitHubApi.over(http).approvals, repo, run_id, env_name, approver)
    release = _run_release(app, service, env_name, digest, run.head_sha)
    found = VerifiedApproval(entry.reviewer, run.url, release, str(repo), approver.organisation)
    _record(app, env_name, found)
    _emit(_values(found), as_json, github_output)


# --- deployment statuses -----------------------------------------------------------


@click.command(name="deployment-status")
@click.option("--repo", "repo_name", required=True, metavar="OWNER/REPO", help="The Dev repository.")
@click.option("--commit", required=True, help="The Dev commit the release was built from.")
@click.option("--env", "env_name", required=True, help="The environment (GitHub deployment environment).")
@click.option("--state", type=click.Choice(STATES), required=True, help="The deployment's state.")
@click.option("--url", default="", help="Link shown with the status (e.g. the workflow run).")
@click.option("--description", default="", help="Short text (GitHub keeps 140 characters).")
@click.option("--service", default="", help="Recorded in the deployment's payload.")
@click.option("--digest", default="", help="Recorded in the deployment's payload.")
@token_option
@json_option
@github_output_option
def deployment_status(
    repo_name: str,
    commit: str,
    env_name: str,
    state: str,
    url: str,
    description: str,
    service: str,
    digest: str,
    token_env: str,
    as_json: bool,
    github_output: bool,
) -> None:
    """Add a status to the GitHub deployment of a commit to an environment (created once).

    GitHub outputs: deployment_id, status_id, state.
    """
    repo = RepoName.parse(repo_name)
    if url and not re.fullmatch(r"https?://\S+", url):
        raise UsageError(f"--url {url!r} is not an http(s) URL", hint="pass the run's or the service's URL")
    payload = {k: v for k, v in (("service", service), ("digest", digest)) if v}
    with _connect(token_env) as http:
        result = report(
            GitHubApi.over(http).deployments,
            repo,
            commit,
            env_name,
            state,
            url=url,
            description=description,
            payload=payload,
        )
    verb = "created" if result.created else "reused"
    _say(f"{repo}@{commit[:12]} {env_name}: {state} (deployment {result.deployment} {verb})")
    values: dict[str, object] = {
        "deployment_id": result.deployment,
        "status_id": result.status,
        "state": result.state,
    }
    _emit(values, as_json, github_output)
