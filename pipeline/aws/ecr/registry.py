"""ECR as the ``ImageRegistry`` port: repositories, pushes, tag/digest resolution, copies.

One repository per service (``<prefix><service>``), with immutable tags, scan on push and
a lifecycle policy. Images are tagged with the commit they were built from and always
resolved to ``<registry>/<repository>@sha256:...``: a mutable tag never names a release.

Contracts:

- ``ensure_repository`` is idempotent and converges an existing repository's settings.
- ``push`` and ``copy_image`` are idempotent (see ``pipeline.aws.ecr.push``): pushing an
  image whose tag already holds the same digest does nothing; a different digest under the
  same tag is refused (immutable tags).
- Digests are ``sha256:`` of the manifest bytes, computed here and passed to ``PutImage``.
- ``IAM_ACTIONS`` lists every ECR action this module calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws.ecr.push import (
    DEFAULT_PART_SIZE,
    BlobSource,
    EcrClient,
    EcrLayerSource,
    FirstOf,
    PushReport,
    Repo,
    check_part_size,
    push_image,
)
from pipeline.aws.errors import aws_errors, error_code
from pipeline.core.errors import NotFoundError, PlatformError, UsageError
from pipeline.core.model import Release
from pipeline.oci import OciArchive, OciImage

IAM_ACTIONS: frozenset[str] = frozenset(
    {
        "ecr:CreateRepository",
        "ecr:DescribeRepositories",
        "ecr:PutImageTagMutability",
        "ecr:PutImageScanningConfiguration",
        "ecr:GetLifecyclePolicy",
        "ecr:PutLifecyclePolicy",
        "ecr:DescribeImages",
        "ecr:BatchCheckLayerAvailability",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    }
)
DEFAULT_KEEP_IMAGES = 50
_COMMIT = re.compile(r"^[0-9a-f]{40}(-dirty)?$")
_SHORT_COMMIT = re.compile(r"^[0-9a-f]{7,39}$")
_ACCEPTED = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
]


def keep_last_policy(count: int = DEFAULT_KEEP_IMAGES) -> str:
    """A lifecycle policy that expires all but the ``count`` most recent images."""
    rule = {
        "rulePriority": 1,
        "description": f"keep the last {count} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": count},
        "action": {"type": "expire"},
    }
    return json.dumps({"rules": [rule]}, sort_keys=True)


@dataclass(frozen=True, slots=True)
class Repository:
    name: str
    uri: str
    registry_id: str


class EcrRegistry:
    """ECR repositories of one registry (account + region), reached through ``client``.

    ``registry`` is the registry host (``<account>.dkr.ecr.<region>.amazonaws.com``); when
    empty, the client's own account is used. ``head`` turns the reference ``HEAD`` into a
    commit (the CLI passes the checkout's). ``part_size`` is in bytes (5 to 20 MiB).
    """

    def __init__(
        self,
        client: EcrClient,
        *,
        registry: str = "",
        prefix: str = "",
        lifecycle_policy: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        concurrency: int = 4,
        head: Callable[[], str] | None = None,
    ) -> None:
        check_part_size(part_size)
        self.client = client
        self.registry_id = registry.split(".", 1)[0] if registry else None
        self.prefix = prefix
        self.lifecycle_policy = lifecycle_policy or keep_last_policy()
        self.part_size = part_size
        self.concurrency = concurrency
        self.head = head
        self._uris: dict[str, str] = {}

    def repo(self, service: str) -> Repo:
        return Repo(self.client, self.prefix + service, self.registry_id)

    def ensure_repository(self, service: str) -> Repository:
        """Create the service's repository, or converge an existing one. Idempotent."""
        repo = self.repo(service)
        with aws_errors(f"create or update ECR repository {repo.name}"):
            try:
                found = self.client.create_repository(
                    **repo.ids,
                    imageTagMutability="IMMUTABLE",
                    imageScanningConfiguration={"scanOnPush": True},
                )["repository"]
            except ClientError as exc:
                if error_code(exc) != "RepositoryAlreadyExistsException":
                    raise
                found = self._repository(repo)
                self._converge(repo, found)
            self._ensure_lifecycle(repo)
        self._uris[service] = str(found["repositoryUri"])
        return Repository(repo.name, str(found["repositoryUri"]), str(found["registryId"]))

    def push(
        self,
        service: str,
        archive: OciArchive,
        tag: str,
        *,
        image: OciImage | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> tuple[Release, PushReport]:
        """Push the archive's image under ``tag`` (the commit) into an existing repository."""
        image = image or archive.image()
        report = push_image(
            self.repo(service), archive, image, tag,
            part_size=self.part_size, concurrency=self.concurrency, on_bytes=on_bytes,
        )  # fmt: skip
        return self._release(service, image.digest, [tag], tag), report

    def resolve(self, service: str, reference: str) -> Release:
        """A tag, a commit (full or a unique prefix of 7+ hex digits), ``HEAD``, a digest or
        ``...@sha256:...`` -> the release pinned by digest. NotFoundError if absent."""
        if "@sha256:" in reference:
            reference = reference.split("@", 1)[1]
        if reference == "HEAD" and self.head is not None:
            reference = self.head()
        key = "imageDigest" if reference.startswith("sha256:") else "imageTag"
        detail = self._describe(service, {key: reference})
        if detail is None and key == "imageTag" and _SHORT_COMMIT.fullmatch(reference):
            detail = self._by_prefix(service, reference)
        if detail is None:
            raise NotFoundError(
                f"no image of {service} matches {reference!r} in ECR repository {self.repo(service).name}",
                hint=f"push it first (`pipeline push {service}`), or check the tag, commit or digest",
            )
        tags = [str(tag) for tag in detail.get("imageTags") or []]
        wanted = reference if key == "imageTag" and reference in tags else ""
        return self._release(service, str(detail["imageDigest"]), tags, wanted)

    def copy_image(
        self,
        service: str,
        digest: str,
        target: EcrRegistry,
        *,
        blobs: BlobSource | None = None,
        tag: str | None = None,
    ) -> tuple[Release, PushReport]:
        """Copy the image ``digest`` of ``service`` to ``target`` (another account or region).

        Blobs come from ``blobs`` (e.g. the image's OCI archive) when it has them, else are
        downloaded from this registry (``GetDownloadUrlForLayer``). The tag defaults to the
        image's commit tag. Idempotent.
        """
        source = self.repo(service)
        with aws_errors(f"read image {digest} of ECR repository {source.name}"):
            found = self.client.batch_get_image(
                **source.ids, imageIds=[{"imageDigest": digest}], acceptedMediaTypes=_ACCEPTED
            )
        images = found.get("images") or []
        if not images:
            raise NotFoundError(
                f"no image {digest} in ECR repository {source.name}",
                hint="check the digest with `pipeline status` or push the image first",
            )
        image = _image_of(images[0], digest)
        current = self.resolve(service, digest)
        tag = tag or current.version
        if tag == digest:
            raise UsageError(f"image {digest} of {service} has no tag to copy", hint="pass a tag")
        target.ensure_repository(service)
        chain = FirstOf(*([blobs] if blobs else []), EcrLayerSource(source))
        report = push_image(
            target.repo(service), chain, image, tag,
            part_size=target.part_size, concurrency=target.concurrency,
        )  # fmt: skip
        return target.resolve(service, digest), report

    def _converge(self, repo: Repo, found: dict[str, Any]) -> None:
        if found.get("imageTagMutability") != "IMMUTABLE":
            self.client.put_image_tag_mutability(**repo.ids, imageTagMutability="IMMUTABLE")
        if not (found.get("imageScanningConfiguration") or {}).get("scanOnPush"):
            self.client.put_image_scanning_configuration(
                **repo.ids, imageScanningConfiguration={"scanOnPush": True}
            )

    def _ensure_lifecycle(self, repo: Repo) -> None:
        try:
            current = self.client.get_lifecycle_policy(**repo.ids).get("lifecyclePolicyText")
        except ClientError as exc:
            if error_code(exc) != "LifecyclePolicyNotFoundException":
                raise
            current = None
        if current is None or json.loads(current) != json.loads(self.lifecycle_policy):
            self.client.put_lifecycle_policy(**repo.ids, lifecyclePolicyText=self.lifecycle_policy)

    def _describe(self, service: str, image_id: dict[str, str]) -> dict[str, Any] | None:
        repo = self.repo(service)
        with aws_errors(f"look up {image_id} in ECR repository {repo.name}"):
            try:
                details = self.client.describe_images(**repo.ids, imageIds=[image_id])["imageDetails"]
            except ClientError as exc:
                if error_code(exc) == "ImageNotFoundException":
                    return None
                if error_code(exc) == "RepositoryNotFoundException":
                    raise _no_repository(repo, service) from exc
                raise
        return dict(details[0]) if details else None

    def _by_prefix(self, service: str, prefix: str) -> dict[str, Any] | None:
        repo = self.repo(service)
        matches: dict[str, dict[str, Any]] = {}
        with aws_errors(f"list the images of ECR repository {repo.name}"):
            pages = self.client.get_paginator("describe_images").paginate(
                **repo.ids, filter={"tagStatus": "TAGGED"}
            )
            for page in pages:
                for detail in page.get("imageDetails") or []:
                    if any(str(t).startswith(prefix) for t in detail.get("imageTags") or []):
                        matches[str(detail["imageDigest"])] = detail
        if len(matches) > 1:
            raise UsageError(
                f"{prefix!r} matches {len(matches)} images of {service}",
                hint="give more digits of the commit, or the digest",
            )
        return next(iter(matches.values()), None)

    def _release(self, service: str, digest: str, tags: list[str], tag: str) -> Release:
        commit = next((t for t in tags if _COMMIT.fullmatch(t)), "")
        version = tag or commit or (tags[0] if tags else digest)
        return Release(service, version, digest, commit, f"{self._uri(service)}@{digest}")

    def _uri(self, service: str) -> str:
        if service not in self._uris:
            repo = self.repo(service)
            with aws_errors(f"describe ECR repository {repo.name}"):
                self._uris[service] = str(self._repository(repo)["repositoryUri"])
        return self._uris[service]

    def _repository(self, repo: Repo) -> dict[str, Any]:
        registry = {"registryId": repo.registry_id} if repo.registry_id else {}
        found = self.client.describe_repositories(**registry, repositoryNames=[repo.name])
        return dict(found["repositories"][0])


def _no_repository(repo: Repo, service: str) -> NotFoundError:
    where = f" in registry {repo.registry_id}" if repo.registry_id else ""
    return NotFoundError(
        f"no image of {service}: ECR repository {repo.name} does not exist{where}",
        hint=f"push an image first with `pipeline push {service} --env ENV`",
    )


def _image_of(found: dict[str, Any], digest: str) -> OciImage:
    manifest = str(found["imageManifest"]).encode("utf-8")
    image = OciImage.from_manifest(manifest, str(found.get("imageManifestMediaType") or ""))
    if image.digest != digest:
        raise PlatformError(
            f"ECR returned a manifest for {digest} that hashes to {image.digest}",
            hint="the registry altered the manifest; copy from the image's OCI archive instead",
        )
    return image
