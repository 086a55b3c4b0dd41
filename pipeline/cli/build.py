"""``pipeline build`` and ``pipeline push``: a service's image to an OCI archive, then to ECR.

Each body is parse -> wire -> ``pipeline.build`` / ``pipeline.aws.ecr.registry`` -> render: data
(the archive, the pushed release) on stdout, progress on stderr.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from pipeline.app import App
from pipeline.build import (
    BuildRequest,
    archive_path,
    build_image,
    detect_builder,
    source_revision,
)
from pipeline.cli.outputs import github_output_option, write_github_output
from pipeline.console.render import emit_json, err, out, styled
from pipeline.core.errors import UsageError
from pipeline.core.model import Release
from pipeline.oci import OciArchive

if TYPE_CHECKING:
    from pipeline.aws.ecr.registry import EcrRegistry
    from pipeline.config import ServiceConfig

STORAGE_ENV = "PIPELINE_BUILD_STORAGE"  # podman/buildah image storage folder (CI caches, tests)
REVISION_LABEL = "org.opencontainers.image.revision"
SERVICE_LABEL = "pipeline.service"
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")


def build_request(
    root: Path, service: ServiceConfig, *, commit: str | None, out: Path | None
) -> BuildRequest:
    """The build of ``service`` at the checkout's HEAD (or ``commit``): the config glue."""
    context = root / service.build.context
    if commit:
        created = float(os.environ.get("SOURCE_DATE_EPOCH") or int(time.time()))
    else:
        commit, created = source_revision(root, context)
    return BuildRequest(
        service=service.name,
        context=context,
        dockerfile=context / service.build.dockerfile,
        commit=commit,
        created=created,
        out=out or archive_path(root, service.name, commit),
        build_args=tuple(sorted(service.build.args.items())),
        target=service.build.target,
    )


@click.command()
@click.argument("service")
@click.option("--builder", type=click.Choice(["docker", "podman", "buildah"]), help="Default: detected.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Archive path to write.")
@click.option("--commit", help="Tag and label with this commit instead of the checkout's HEAD.")
@json_option
@click.pass_obj
def build(
    app: App, service: str, builder: str | None, out: Path | None, commit: str | None, as_json: bool
) -> None:
    """Build SERVICE's image into an OCI archive (.pipeline/images/SERVICE/COMMIT.oci.tar)."""
    request = build_request(app.root, app.project.service(service), commit=commit, out=out)
    chosen = detect_builder(builder)
    if os.environ.get(STORAGE_ENV):
        chosen = chosen.with_storage(Path(os.environ[STORAGE_ENV]))
    err.print(f"building {service} at {request.commit[:12]} with {chosen.name}")
    result = build_image(
        request, chosen, log=lambda line: err.print(f"  {line}", markup=False, style="dim", soft_wrap=True)
    )
    built = f" {service} {result.digest} ({result.size / 2**20:.1f} MiB)"
    err.print(styled("built", "green", built), soft_wrap=True)
    _show(result.to_dict(), str(result.archive), as_json)


@click.command()
@click.argument("service")
@click.option("--env", "env_name", required=True, help="Environment whose registry receives it.")
@click.option("--archive", type=click.Path(dir_okay=True, path_type=Path), help="Default: HEAD's build.")
@click.option("--tag", help="Default: the image's commit (its org.opencontainers.image.revision label).")
@click.option("--ref", "git_ref", default="HEAD", show_default=True, help="Local platform: commit to store.")
@click.option("--part-size", type=click.IntRange(5, 20), default=10, show_default=True, help="MiB per part.")
@json_option
@github_output_option
@click.pass_obj
def push(
    app: App,
    service: str,
    env_name: str,
    archive: Path | None,
    tag: str | None,
    git_ref: str,
    part_size: int,
    as_json: bool,
    github_output: bool,
) -> None:
    """Push SERVICE's image to the environment's registry (idempotent): ECR on AWS; on the
    local platform, the commit's snapshot into the local registry.

    GitHub outputs: image (repo@sha256:...), digest, version, commit.
    """
    config = app.project.service(service)
    app.writable(env_name, "push to")
    if app.environment(env_name).platform == "local":
        release = app.registry(env_name).resolve(service, git_ref)
        err.print(styled("stored", "green", f" {release.image} ({release.version})"), soft_wrap=True)
        _pushed(release, {}, as_json, github_output)
        return
    registry = ecr_registry(app, env_name, part_size=part_size * 2**20)
    if archive is None:
        commit, _ = source_revision(app.root, app.root / config.build.context)
        archive = archive_path(app.root, service, commit)
    oci = OciArchive.open(archive)
    image = oci.image()
    tag = tag or _tag_of(oci.labels(image), service, archive)
    registry.ensure_repository(service)
    # the tag comes from the archive's labels: shown as it is, never read as markup
    described = TextColumn("{task.description}", markup=False)
    columns = (described, BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(f"push {service}:{tag[:12]}", total=image.size)
        release, report = registry.push(
            service, oci, tag, image=image, on_bytes=lambda n: progress.advance(task, n)
        )
    if report.manifest_put:
        note = f"{report.blobs_uploaded} blobs uploaded ({report.bytes_uploaded / 2**20:.1f} MiB), "
        err.print(
            styled("pushed", "green", f" {release.image}: {note}{report.blobs_skipped} already in ECR"),
            soft_wrap=True,
        )
    else:
        err.print(styled("already pushed", "green", f": {release.image}; nothing uploaded"), soft_wrap=True)
    _pushed(release, {"uploaded_blobs": report.blobs_uploaded}, as_json, github_output)


def _pushed(release: Release, extra: dict[str, object], as_json: bool, github_output: bool) -> None:
    """Show a pushed release; with ``github_output``, its image, digest, version and commit."""
    if github_output:
        write_github_output(
            {"image": release.image, "digest": release.digest, "version": release.version,
             "commit": release.commit}
        )
    _show({**release.to_dict(), **extra}, release.image, as_json)


def ecr_registry(app: App, env_name: str, *, part_size: int) -> EcrRegistry:
    """The ECR registry of an AWS environment: the one place the push command wires AWS."""
    from pipeline.aws.ecr.registry import EcrRegistry
    from pipeline.aws.session import AwsSession, SessionSettings

    env = app.environment(env_name)
    if env.aws is None or env.aws.ecr_registry is None:
        raise UsageError(
            f"cannot push to {env_name}: it runs on the {env.platform} platform, which has no ECR",
            hint="push to an environment with `platform: aws`; the local platform needs no push",
        )
    settings = SessionSettings(
        region=env.aws.region,
        role_arn=env.aws.role_arn or "",
        actor=app.actor,
        endpoint_url=env.aws.endpoint_url or "",
    )
    return EcrRegistry(
        AwsSession(settings).client("ecr"),
        registry=env.aws.ecr_registry,
        part_size=part_size,
        head=lambda: source_revision(app.root)[0],
    )


def _tag_of(labels: dict[str, str], service: str, archive: Path) -> str:
    built_for = labels.get(SERVICE_LABEL)
    if built_for and built_for != service:
        raise UsageError(
            f"{archive} holds an image of {built_for}, not of {service}",
            hint=f"pass the archive built by `pipeline build {service}`",
        )
    revision = labels.get(REVISION_LABEL)
    if not revision:
        raise UsageError(
            f"{archive} has no {REVISION_LABEL} label to tag it with",
            hint="pass --tag COMMIT, or build it with `pipeline build`",
        )
    return revision


def _show(data: dict[str, object], line: str, as_json: bool) -> None:
    if as_json:
        emit_json(data)
    else:
        out.print(line, markup=False)
