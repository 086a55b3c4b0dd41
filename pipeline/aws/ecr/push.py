"""Pushing one image to an ECR repository through the layer-upload API (boto3 only).

The sequence: is the tag already there? (same digest: nothing to do; another digest: the
tag is immutable, stop) → ``BatchCheckLayerAvailability`` for every blob (config and
layers) → for each missing one ``InitiateLayerUpload``, ``UploadLayerPart`` in parts of
``part_size`` bytes, ``CompleteLayerUpload`` with its sha256 digest → ``PutImage`` with the
manifest bytes, the tag and ``imageDigest`` = sha256 of those bytes.

Contracts:

- Idempotent: pushing the same image again uploads nothing and puts nothing; a blob that
  appears meanwhile (``LayerAlreadyExistsException``) and a manifest that was put meanwhile
  with the same digest (``ImageAlreadyExistsException``) count as success.
- Every uploaded blob is hashed while streaming; a blob whose bytes do not match its
  digest is never completed.
- Parts are sent in order within one upload; up to ``concurrency`` blobs upload at once.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from pipeline.aws.errors import aws_errors, error_code
from pipeline.core.errors import NotFoundError, PlatformError
from pipeline.oci import Descriptor, OciImage

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 10 * MiB
MIN_PART_SIZE = 5 * MiB  # ECR's minimum for every part but the last
MAX_PART_SIZE = 20 * MiB
_CHECK_BATCH = 100  # BatchCheckLayerAvailability takes at most 100 digests

# A boto3 ECR client (typed Any: the ECR stubs are an optional dev extra).
EcrClient = Any


class BlobSource(Protocol):
    """Where blob bytes come from: an OCI archive, or another ECR repository."""

    def has(self, digest: str) -> bool: ...

    def chunks(self, digest: str, chunk_size: int) -> Iterator[bytes]: ...


@dataclass(frozen=True, slots=True)
class Repo:
    """One ECR repository, reached through a client (whose region it lives in)."""

    client: EcrClient
    name: str
    registry_id: str | None = None

    @property
    def ids(self) -> dict[str, str]:
        ids = {"repositoryName": self.name}
        if self.registry_id:
            ids["registryId"] = self.registry_id
        return ids


@dataclass(frozen=True, slots=True)
class PushReport:
    """What a push did. ``manifest_put`` is False when the tag already held this digest."""

    digest: str
    tag: str
    blobs_uploaded: int
    blobs_skipped: int
    bytes_uploaded: int
    parts: int
    manifest_put: bool


def push_image(
    repo: Repo,
    source: BlobSource,
    image: OciImage,
    tag: str,
    *,
    part_size: int = DEFAULT_PART_SIZE,
    concurrency: int = 4,
    on_bytes: Callable[[int], None] | None = None,
) -> PushReport:
    """Push ``image`` (blobs read from ``source``) to ``repo`` under ``tag``. Idempotent."""
    check_part_size(part_size)
    existing = tagged_digest(repo, tag)
    if existing == image.digest:
        return PushReport(image.digest, tag, 0, len(image.blobs), 0, 0, manifest_put=False)
    if existing is not None:
        raise tag_conflict(repo, tag, existing, image.digest)
    missing = missing_blobs(repo, image.blobs)
    count = on_bytes or (lambda _n: None)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        parts = list(pool.map(lambda blob: upload_blob(repo, source, blob, part_size, count), missing))
    put = put_manifest(repo, image, tag)
    uploaded = sum(blob.size for blob in missing)
    skipped = len(image.blobs) - len(missing)
    return PushReport(image.digest, tag, len(missing), skipped, uploaded, sum(parts), manifest_put=put)


def check_part_size(part_size: int) -> None:
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise PlatformError(
            f"part size {part_size} bytes is outside ECR's limits: parts must be 5 MiB to 20 MiB",
            hint="use a part size between 5 and 20 MiB (the default is 10 MiB)",
        )


def tagged_digest(repo: Repo, tag: str) -> str | None:
    """The digest ``tag`` points to in ``repo``, or None when the tag does not exist."""
    with aws_errors(f"look up {repo.name}:{tag} in ECR"):
        try:
            found = repo.client.describe_images(**repo.ids, imageIds=[{"imageTag": tag}])
        except ClientError as exc:
            if error_code(exc) == "ImageNotFoundException":
                return None
            if error_code(exc) == "RepositoryNotFoundException":
                raise NotFoundError(
                    f"cannot push to ECR repository {repo.name}: it does not exist",
                    hint="create it first (`pipeline push` does, through EcrRegistry.ensure_repository)",
                ) from exc
            raise
    details = found.get("imageDetails") or []
    return str(details[0]["imageDigest"]) if details else None


def missing_blobs(repo: Repo, blobs: Sequence[Descriptor]) -> list[Descriptor]:
    """The blobs ``repo`` does not hold yet, in the given order."""
    available: set[str] = set()
    with aws_errors(f"check which layers ECR repository {repo.name} holds"):
        for start in range(0, len(blobs), _CHECK_BATCH):
            digests = [blob.digest for blob in blobs[start : start + _CHECK_BATCH]]
            answer = repo.client.batch_check_layer_availability(**repo.ids, layerDigests=digests)
            available.update(
                str(layer["layerDigest"])
                for layer in answer.get("layers") or []
                if layer.get("layerAvailability") == "AVAILABLE"
            )
    return [blob for blob in blobs if blob.digest not in available]


def upload_blob(
    repo: Repo, source: BlobSource, blob: Descriptor, part_size: int, on_bytes: Callable[[int], None]
) -> int:
    """Upload one blob in parts; returns the number of parts sent."""
    with aws_errors(f"upload blob {blob.digest[:19]} to ECR repository {repo.name}"):
        upload = repo.client.initiate_layer_upload(**repo.ids)
        upload_id = str(upload["uploadId"])
        size = min(part_size, int(upload.get("partSize") or part_size))
        hasher, first, parts = hashlib.sha256(), 0, 0
        for part in rechunk(source.chunks(blob.digest, size), size):
            hasher.update(part)
            repo.client.upload_layer_part(
                **repo.ids, uploadId=upload_id, partFirstByte=first,
                partLastByte=first + len(part) - 1, layerPartBlob=part,
            )  # fmt: skip
            first, parts = first + len(part), parts + 1
            on_bytes(len(part))
        actual = "sha256:" + hasher.hexdigest()
        if actual != blob.digest or first != blob.size:
            raise PlatformError(
                f"blob {blob.digest} is corrupt: read {first} bytes hashing to {actual}, "
                f"expected {blob.size} bytes",
                hint="rebuild the image with `pipeline build SERVICE` and push again",
            )
        _complete(repo, upload_id, blob.digest)
    return parts


def _complete(repo: Repo, upload_id: str, digest: str) -> None:
    try:
        done = repo.client.complete_layer_upload(**repo.ids, uploadId=upload_id, layerDigests=[digest])
    except ClientError as exc:
        if error_code(exc) == "LayerAlreadyExistsException":
            return  # another push completed the same blob first
        raise
    if done.get("layerDigest") != digest:
        raise PlatformError(
            f"ECR stored blob {digest} under {done.get('layerDigest')}: the upload was altered",
            hint="push again; if it persists, check proxies between you and ECR",
        )


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup a byte stream into pieces of exactly ``size`` bytes (the last may be shorter)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def put_manifest(repo: Repo, image: OciImage, tag: str) -> bool:
    """Put the manifest under ``tag``; False if the tag already held this very digest."""
    with aws_errors(f"put the manifest of {repo.name}:{tag}"):
        try:
            repo.client.put_image(
                **repo.ids, imageManifest=image.manifest.decode("utf-8"),
                imageManifestMediaType=image.media_type, imageTag=tag, imageDigest=image.digest,
            )  # fmt: skip
            return True
        except ClientError as exc:
            if error_code(exc) not in {"ImageAlreadyExistsException", "ImageTagAlreadyExistsException"}:
                raise
    existing = tagged_digest(repo, tag)
    if existing == image.digest:
        return False
    raise tag_conflict(repo, tag, existing or "another image", image.digest)


def tag_conflict(repo: Repo, tag: str, existing: str, new: str) -> PlatformError:
    return PlatformError(
        f"cannot push {repo.name}:{tag}: the tag already points to {existing} and tags are immutable "
        f"(this image is {new})",
        hint="this commit was pushed before with other content: rebuild it from a clean checkout "
        "(builds are reproducible), or commit and push the change as a new commit",
    )


class FirstOf:
    """A blob source that reads each blob from the first of ``sources`` that has it."""

    def __init__(self, *sources: BlobSource) -> None:
        self.sources = sources

    def has(self, digest: str) -> bool:
        return any(source.has(digest) for source in self.sources)

    def chunks(self, digest: str, chunk_size: int) -> Iterator[bytes]:
        for source in self.sources:
            if source.has(digest):
                return source.chunks(digest, chunk_size)
        raise PlatformError(f"no source holds blob {digest}", hint="pass the image's OCI archive")


class EcrLayerSource:
    """Blobs of an image in an ECR repository, downloaded through ``GetDownloadUrlForLayer``."""

    def __init__(self, repo: Repo, timeout: float = 60.0) -> None:
        self.repo = repo
        self.timeout = timeout

    def has(self, digest: str) -> bool:
        return True  # every blob of an image in the repository is downloadable from it

    def chunks(self, digest: str, chunk_size: int) -> Iterator[bytes]:
        try:
            answer: dict[str, Any] = self.repo.client.get_download_url_for_layer(
                **self.repo.ids, layerDigest=digest
            )
            with urllib.request.urlopen(str(answer["downloadUrl"]), timeout=self.timeout) as response:
                while chunk := response.read(chunk_size):
                    yield chunk
        except (ClientError, urllib.error.URLError, OSError) as exc:
            why = (
                f"AWS answered {error_code(exc) or 'an error'}" if isinstance(exc, ClientError) else str(exc)
            )
            raise PlatformError(
                f"cannot read blob {digest} from ECR repository {self.repo.name}: {why}",
                hint="pass the image's OCI archive (--archive) so the blobs are uploaded from disk",
            ) from exc
