"""Push throughput to ECR (moto's server over HTTP) of a ~50 MiB image, and a no-op re-push.

Builds a ``FROM scratch`` image of random (incompressible) files with buildah, pushes it
through the layer-upload API, then pushes it again (nothing to upload). Prints figures;
it is not a pass/fail test.

    python bench/push.py [--size-mib 50] [--layers 3] [--part-mib 10] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

MiB = 1024 * 1024


def build(folder: Path, size_mib: int, layers: int) -> Path:
    from pipeline.build import BuildRequest, build_image, detect_builder

    context = folder / "context"
    context.mkdir()
    names = [f"part{n}.bin" for n in range(layers)]
    for name in names:
        (context / name).write_bytes(os.urandom(size_mib * MiB // layers))
    (context / "Dockerfile").write_text("FROM scratch\n" + "".join(f"COPY {n} /{n}\n" for n in names))
    builder = detect_builder("buildah").with_storage(folder / "storage")
    commit = "b" * 40
    request = BuildRequest("bench", context, context / "Dockerfile", commit, 1.7e9, folder / "bench.oci.tar")
    return build_image(request, builder).archive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=50)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--part-mib", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="fresh pushes to average over")
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    from pipeline.aws.ecr.registry import EcrRegistry
    from pipeline.aws.session import AwsSession, SessionSettings
    from pipeline.oci import OciArchive

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[key] = "bench"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    folder = Path(tempfile.mkdtemp(prefix="push-bench-"))
    try:
        host, port = server.get_host_and_port()
        os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
        archive = OciArchive.open(build(folder, args.size_mib, args.layers))
        image = archive.image()
        session = AwsSession(SessionSettings(region="eu-west-1", max_attempts=1))
        registry = EcrRegistry(
            session.client("ecr"), part_size=args.part_mib * MiB, concurrency=args.concurrency
        )
        fresh, noop, blobs_present = [], [], []
        for n in range(args.rounds):
            registry.ensure_repository(f"bench{n}")
            started = time.perf_counter()
            _, report = registry.push(f"bench{n}", archive, "b" * 40, image=image)
            fresh.append(time.perf_counter() - started)
            assert report.blobs_uploaded == len(image.blobs)
            started = time.perf_counter()
            _, again = registry.push(f"bench{n}", archive, "b" * 40, image=image)
            noop.append(time.perf_counter() - started)
            assert again.blobs_uploaded == 0 and not again.manifest_put
            started = time.perf_counter()
            _, retag = registry.push(f"bench{n}", archive, "c" * 40, image=image)
            blobs_present.append(time.perf_counter() - started)
            assert retag.blobs_uploaded == 0 and retag.manifest_put
        size = image.size / MiB
        push_s, noop_s = statistics.median(fresh), statistics.median(noop)
        print(
            f"image: {size:.1f} MiB in {len(image.blobs)} blobs, {report.parts} parts of {args.part_mib} MiB"
        )
        print(f"first push:  {push_s:.3f} s  ->  {size / push_s:.1f} MiB/s (median of {args.rounds})")
        print(f"second push: {noop_s * 1000:.1f} ms (no-op: tag already holds the digest)")
        print(f"ratio first/second: {push_s / noop_s:.0f}x")
        print(f"new tag, blobs present: {statistics.median(blobs_present) * 1000:.1f} ms (check + put only)")
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
