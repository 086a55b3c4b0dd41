"""``ImageRef.parse``: the image references ``pipeline deploy --image`` accepts."""

from __future__ import annotations

from pipeline.core.model import ImageRef

DIGEST = "sha256:" + "ab" * 32


def test_a_tagged_reference_keeps_repository_tag_and_digest() -> None:
    ref = ImageRef.parse(f"123.dkr.ecr.eu-west-1.amazonaws.com/orders:1.2.0@{DIGEST}")
    assert ref == ImageRef("123.dkr.ecr.eu-west-1.amazonaws.com/orders", "1.2.0", DIGEST)


def test_a_registry_port_is_not_taken_for_a_tag() -> None:
    ref = ImageRef.parse(f"localhost:5000/orders@{DIGEST}")
    assert ref == ImageRef("localhost:5000/orders", None, DIGEST)


def test_a_reference_without_digest_is_not_pinned() -> None:
    assert ImageRef.parse("orders:1.2.0") is None
    assert ImageRef.parse("HEAD") is None


def test_the_release_takes_its_version_from_the_tag_else_the_short_digest() -> None:
    tagged = ImageRef.parse(f"repo/orders:1.2.0@{DIGEST}")
    bare = ImageRef.parse(f"repo/orders@{DIGEST}")
    assert tagged is not None and bare is not None
    assert tagged.release("orders", commit="abc").version == "1.2.0"
    assert tagged.release("orders").image == f"repo/orders:1.2.0@{DIGEST}"
    assert bare.release("orders").version == DIGEST[7:19]
    assert bare.release("orders", commit="abc").commit == "abc"
