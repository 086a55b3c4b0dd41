"""Read one OCI image out of an ``oci-archive`` tar file or an OCI image layout directory.

An archive holds ``index.json`` (which manifests it carries), ``oci-layout`` and content
addressed blobs under ``blobs/sha256/``. ``OciArchive.open(path).image()`` returns the
image's manifest bytes (exactly as stored: its digest is ``sha256`` of those bytes), its
config and its layers. Nested indexes (``docker buildx`` writes one) are followed and the
manifest of the requested platform is picked; attestation manifests are ignored.

Contracts:

- Nothing is extracted: blobs are read in place, by offset, through a fresh file handle on
  every call, so reads are safe from several threads at once.
- ``read`` verifies size and digest of what it returns; ``chunks`` does not (it streams
  large layers), callers hash what they consume and compare with ``Descriptor.digest``.
- Sizes are bytes. Only ``sha256`` digests are supported.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.errors import NotFoundError, UsageError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_INDEX = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_INDEX})
DEFAULT_PLATFORM = "linux/amd64"

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HINT = "rebuild it with `pipeline build SERVICE`, or pass the path of an OCI archive (oci-archive tar)"


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A pointer to a blob: media type, ``sha256:<hex>`` digest, size in bytes."""

    media_type: str
    digest: str
    size: int
    platform: str = ""

    @classmethod
    def parse(cls, data: Any, where: str) -> Descriptor:
        try:
            digest, size = str(data["digest"]), int(data["size"])
            media_type = str(data.get("mediaType", ""))
            plat = data.get("platform") or {}
            platform = f"{plat['os']}/{plat['architecture']}" if plat else ""
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"bad descriptor in {where}: {exc!r} in {data!r}", hint=_HINT) from exc
        if not _DIGEST.fullmatch(digest) or size < 0:
            raise UsageError(f"bad descriptor in {where}: digest {digest!r}, size {size}", hint=_HINT)
        return cls(media_type, digest, size, platform)


@dataclass(frozen=True, slots=True)
class OciImage:
    """One single-platform image: the manifest bytes and the blobs they reference."""

    manifest: bytes
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @property
    def digest(self) -> str:
        """``sha256:`` of the manifest bytes: the image's identity in any registry."""
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Config first, then layers in manifest order, without duplicates."""
        seen: dict[str, Descriptor] = {}
        for blob in (self.config, *self.layers):
            seen.setdefault(blob.digest, blob)
        return tuple(seen.values())

    @property
    def size(self) -> int:
        """Bytes of all blobs (the manifest excluded)."""
        return sum(blob.size for blob in self.blobs)

    @classmethod
    def from_manifest(cls, manifest: bytes, media_type: str = "") -> OciImage:
        """Parse manifest bytes (kept verbatim); ``media_type`` defaults to the manifest's own."""
        try:
            data = json.loads(manifest)
            config = Descriptor.parse(data["config"], "manifest config")
            layers = tuple(Descriptor.parse(layer, "manifest layers") for layer in data["layers"])
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"image manifest is not valid: {exc!r}", hint=_HINT) from exc
        kind = media_type or str(data.get("mediaType", OCI_MANIFEST))
        if kind not in MANIFEST_TYPES:
            raise UsageError(f"unsupported manifest media type {kind!r}", hint=_HINT)
        return cls(manifest, kind, config, layers)


class OciArchive:
    """Blobs of an OCI archive (tar) or layout directory, addressed by digest."""

    def __init__(self, path: Path, members: dict[str, tuple[int, int]] | None) -> None:
        self.path = path
        self._members = members  # digest -> (offset, size) inside the tar; None for a directory

    @classmethod
    def open(cls, path: Path | str) -> OciArchive:
        """Index ``path``. NotFoundError if it does not exist, UsageError if it is no OCI archive."""
        path = Path(path)
        if not path.exists():
            raise NotFoundError(f"image archive {path} does not exist", hint=_HINT)
        archive = cls(path, None) if path.is_dir() else cls(path, _index_tar(path))
        archive._require("index.json")
        return archive

    def has(self, digest: str) -> bool:
        return self._locate(_blob_name(digest)) is not None

    def read(self, digest: str, size: int | None = None) -> bytes:
        """The whole blob, verified against ``digest`` (and ``size`` if given)."""
        data = b"".join(self.chunks(digest, 1 << 20))
        if size is not None and len(data) != size:
            raise UsageError(
                f"blob {digest} in {self.path} has {len(data)} bytes, expected {size}", hint=_HINT
            )
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise UsageError(
                f"blob {digest} in {self.path} is corrupt: its content hashes to {actual}", hint=_HINT
            )
        return data

    def chunks(self, digest: str, chunk_size: int) -> Iterator[bytes]:
        """Stream a blob in pieces of at most ``chunk_size`` bytes (unverified; see module doc)."""
        offset, size = self._require(_blob_name(digest))
        name = self.path / _blob_name(digest) if self._members is None else self.path
        with name.open("rb") as handle:
            handle.seek(offset)
            left = size
            while left > 0:
                piece = handle.read(min(chunk_size, left))
                if not piece:
                    raise UsageError(f"blob {digest} in {self.path} is truncated", hint=_HINT)
                left -= len(piece)
                yield piece

    def image(self, platform: str = DEFAULT_PLATFORM) -> OciImage:
        """The archive's image for ``platform`` (the only one if it carries a single image)."""
        offset, size = self._require("index.json")
        index = self._json_at("index.json", offset, size)
        descriptor = self._pick(index, platform, depth=0)
        manifest = self.read(descriptor.digest, descriptor.size)
        return OciImage.from_manifest(manifest, descriptor.media_type)

    def labels(self, image: OciImage) -> dict[str, str]:
        """The image config's ``config.Labels`` (empty when it has none)."""
        config = json.loads(self.read(image.config.digest, image.config.size))
        labels = (config.get("config") or {}).get("Labels") or {}
        return {str(key): str(value) for key, value in labels.items()}

    def _pick(self, index: Any, platform: str, depth: int) -> Descriptor:
        entries = [Descriptor.parse(item, "index") for item in index.get("manifests") or []]
        entries = [e for e in entries if e.platform != "unknown/unknown"]  # attestations
        nested = [e for e in entries if e.media_type in INDEX_TYPES]
        images = [e for e in entries if e.media_type not in INDEX_TYPES]
        if not images and len(nested) == 1 and depth < 3:
            return self._pick(json.loads(self.read(nested[0].digest, nested[0].size)), platform, depth + 1)
        matching = [e for e in images if e.platform == platform] or [e for e in images if not e.platform]
        if len(images) == 1:
            return images[0]
        if len(matching) == 1:
            return matching[0]
        found = ", ".join(e.platform or e.digest for e in images) or "none"
        raise UsageError(
            f"{self.path} does not hold exactly one image for {platform}: found {found}",
            hint="build a single-platform image with `pipeline build SERVICE`, or pick the platform",
        )

    def _json_at(self, name: str, offset: int, size: int) -> Any:
        path = self.path / name if self._members is None else self.path
        with path.open("rb") as handle:
            handle.seek(offset)
            raw = handle.read(size)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise UsageError(f"{name} in {self.path} is not JSON: {exc}", hint=_HINT) from exc

    def _locate(self, name: str) -> tuple[int, int] | None:
        if self._members is not None:
            return self._members.get(name)
        file = self.path / name
        return (0, file.stat().st_size) if file.is_file() else None

    def _require(self, name: str) -> tuple[int, int]:
        found = self._locate(name)
        if found is None:
            raise UsageError(f"{self.path} is not an OCI image archive: it has no {name}", hint=_HINT)
        return found


def _blob_name(digest: str) -> str:
    if not _DIGEST.fullmatch(digest):
        raise UsageError(f"unsupported digest {digest!r}: only sha256 is supported", hint=_HINT)
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def _index_tar(path: Path) -> dict[str, tuple[int, int]]:
    """Member name -> (data offset, size) for the regular files of an uncompressed tar."""
    try:
        with tarfile.open(path, "r:") as tar:
            members = {_blob_key(info.name): (info.offset_data, info.size) for info in tar if info.isfile()}
    except (tarfile.TarError, OSError) as exc:
        raise UsageError(f"{path} is not an OCI image archive: {exc}", hint=_HINT) from exc
    return members


def _blob_key(name: str) -> str:
    """Normalise a member name (``./blobs/...`` and ``blobs/...`` are the same file)."""
    return name.removeprefix("./")
