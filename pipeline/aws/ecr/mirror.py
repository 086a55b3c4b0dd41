"""A release's image in the registry of the environment that runs it.

A promotion deploys the digest that passed an earlier environment; its ``Release.image``
names the registry it was pushed to. When the target environment's registry
(``aws.ecr_registry``) is another one (another account or region), ECS there must pull
from its own registry: ``ensure_image`` looks the digest up in the target registry
(``DescribeImages``), copies it from the release's registry by digest when it is absent
(``EcrRegistry.copy_image``: the manifest from ``BatchGetImage``, blobs through
``GetDownloadUrlForLayer``), then looks it up again and refuses to deploy unless the target
registry holds exactly that digest.

Reading the source registry uses the target environment's credentials against the source
registry id: the source repositories need a repository policy that lets the target
account pull (``ecr:BatchGetImage``, ``ecr:GetDownloadUrlForLayer``,
``ecr:DescribeImages``), the documented way to share images across accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from pipeline.aws.ecr.push import EcrClient
from pipeline.aws.ecr.registry import EcrRegistry
from pipeline.aws.errors import aws_errors, error_code
from pipeline.aws.session import AwsSession
from pipeline.core.errors import NotFoundError, PlatformError
from pipeline.core.model import Release

__all__ = ["ImageRef", "ensure_image", "parse_image"]


@dataclass(frozen=True, slots=True)
class ImageRef:
    """``<registry>/<repository>@<digest>`` split in its parts."""

    registry: str
    repository: str
    digest: str

    @property
    def region(self) -> str:
        """The region of an ECR registry host (``<account>.dkr.ecr.<region>.amazonaws.com``)."""
        parts = self.registry.split(".")
        return parts[3] if len(parts) > 4 and parts[1:3] == ["dkr", "ecr"] else ""

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"


def parse_image(image: str) -> ImageRef | None:
    """The parts of a digest-pinned image reference; None when it has no registry or digest."""
    name, sep, digest = image.partition("@")
    registry, slash, repository = name.partition("/")
    if not (sep and slash and digest.startswith("sha256:") and "." in registry):
        return None
    return ImageRef(registry, repository, digest)


def ensure_image(session: AwsSession, registry: str, service: str, release: Release) -> str:
    """The reference of ``release``'s digest in ``registry`` (``<registry>/<service>@<digest>``),
    copied there from the release's own registry when absent. Idempotent: a second call
    only looks the digest up (one ``DescribeImages``)."""
    wanted = f"{registry}/{service}@{release.digest}"
    source = parse_image(release.image)
    if not registry or source is None or source.registry == registry:
        return release.image if source is not None else wanted
    target = EcrRegistry(session.client("ecr"), registry=registry)
    if _holds(target, service, release.digest):
        return wanted
    repository = source.repository
    prefix = repository[: -len(service)] if repository.endswith(service) else ""
    origin = EcrRegistry(_client_in(session, source.region), registry=source.registry, prefix=prefix)
    try:
        origin.copy_image(service, release.digest, target)
    except NotFoundError as exc:
        raise PlatformError(
            f"cannot copy {source} to {registry}: {exc.message}",
            hint="the source repository must let this account pull (repository policy), "
            "or push the image to this environment's registry with `pipeline push`",
        ) from exc
    if not _holds(target, service, release.digest):
        raise PlatformError(
            f"copied {source} to {registry}, but {registry} does not hold {release.digest}",
            hint="nothing was deployed; check the repository in the target registry and retry",
        )
    return wanted


def _holds(registry: EcrRegistry, service: str, digest: str) -> bool:
    """Whether the repository holds an image with exactly ``digest`` (one DescribeImages)."""
    repo = registry.repo(service)
    with aws_errors(f"look up {digest} in ECR repository {repo.name}"):
        try:
            details = repo.client.describe_images(**repo.ids, imageIds=[{"imageDigest": digest}])
        except ClientError as exc:
            if error_code(exc) in ("ImageNotFoundException", "RepositoryNotFoundException"):
                return False
            raise
    return any(d.get("imageDigest") == digest for d in details.get("imageDetails") or [])


def _client_in(session: AwsSession, region: str) -> EcrClient:
    """An ECR client for the source registry's region, with this environment's credentials."""
    if not region or region == session.region:
        return session.client("ecr")
    endpoint = session.settings.endpoint_url or None
    return session.boto.client("ecr", region_name=region, endpoint_url=endpoint)
