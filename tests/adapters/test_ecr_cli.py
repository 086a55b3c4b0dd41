"""``pipeline build`` then ``pipeline push`` on a real project: git checkout, buildah, moto's ECR."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.oci import OciArchive
from tests.adapters.test_ecr_push import require_moto_with_layer_uploads
from tests.support.images import buildah_or_skip

PIPELINE_YAML = """
project: shop
organisations: {dev: {}}
environments:
  dev:
    platform: local
    owner: dev
    local: {port: 18100}
  aws-dev:
    platform: aws
    owner: dev
    aws:
      region: eu-west-1
      account: "123456789012"
      cluster: shop-dev
      listener_arn: {listener}/f2f7dc8efc522ab2
      test_listener_arn: {listener}/0467ef3c8400ae65
      state_table: pipeline-state
      vpc_id: vpc-0a1b2c3d
      subnets: [subnet-0a1b2c3d]
      security_groups: [sg-0123abcd]
      ecr_registry: 123456789012.dkr.ecr.eu-west-1.amazonaws.com
"""

SERVICE_YAML = """
name: {name}
kind: ecs
owner: dev
paths: [services/{name}/**]
build: {{context: services/{name}}}
local: {{command: "python -m http.server $PORT"}}
ecs:
  container: {name}
  port: 8080
  route: {{path: "/{name}*", priority: {priority}}}
"""


def git(cwd: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    buildah_or_skip(tmp_path / "storage")
    monkeypatch.setenv("PIPELINE_BUILD_STORAGE", str(tmp_path / "storage"))
    root = tmp_path / "shop"
    (root / "services").mkdir(parents=True)
    listener = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188"
    (root / "pipeline.yaml").write_text(textwrap.dedent(PIPELINE_YAML).replace("{listener}", listener))
    for priority, name in enumerate(("orders", "catalog"), start=10):
        folder = root / "services" / name
        folder.mkdir()
        (folder / "service.yaml").write_text(SERVICE_YAML.format(name=name, priority=priority))
        (folder / "app.txt").write_text(f"{name} v1\n")
        (folder / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /app.txt\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "v1")
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_build_then_push_puts_the_commit_image_into_ecr_and_a_second_push_is_a_no_op(
    aws: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_moto_with_layer_uploads()
    head = git(project, "rev-parse", "HEAD")

    code, out, err = run(capsys, "--root", str(project), "build", "orders", "--builder", "buildah", "--json")

    assert code == 0, err
    built = json.loads(out)
    assert built["archive"] == str(project / ".pipeline/images/orders" / f"{head}.oci.tar")
    assert built["labels"]["org.opencontainers.image.revision"] == head
    assert OciArchive.open(built["archive"]).image().digest == built["digest"]

    code, out, err = run(capsys, "--root", str(project), "push", "orders", "--env", "aws-dev", "--json")

    assert code == 0, err
    pushed = json.loads(out)
    assert pushed["digest"] == built["digest"]
    assert pushed["image"] == f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/orders@{built['digest']}"
    assert pushed["commit"] == head and pushed["uploaded_blobs"] == 2

    code, out, err = run(capsys, "--root", str(project), "push", "orders", "--env", "aws-dev")

    assert code == 0
    assert out.strip() == pushed["image"]
    assert "already pushed" in err and "nothing uploaded" in err


def test_push_errors_are_rendered_without_a_traceback(
    aws: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_moto_with_layer_uploads()
    root = str(project)

    code, _, err = run(capsys, "--root", root, "push", "orders", "--env", "aws-dev")
    assert code == 3
    assert "does not exist" in err and "pipeline build" in err and "Traceback" not in err

    assert run(capsys, "--root", root, "build", "catalog", "--builder", "buildah")[0] == 0
    catalog = next((project / ".pipeline/images/catalog").glob("*.oci.tar"))
    code, _, err = run(
        capsys, "--root", root, "push", "orders", "--env", "aws-dev", "--archive", str(catalog)
    )
    assert code == 2
    assert "holds an image of catalog, not of orders" in err

    # A local environment has no ECR: push stores the commit's release in the local registry.
    code, out, err = run(capsys, "--root", root, "push", "catalog", "--env", "dev")
    assert code == 0, err
    assert out.strip().startswith("local/catalog@sha256:")


def test_a_dirty_checkout_is_built_under_a_dirty_tag(
    aws: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "services/orders/app.txt").write_text("orders v2, uncommitted\n")

    code, out, _ = run(capsys, "--root", str(project), "build", "orders", "--builder", "buildah")

    assert code == 0
    assert out.strip().endswith(f"{git(project, 'rev-parse', 'HEAD')}-dirty.oci.tar")
