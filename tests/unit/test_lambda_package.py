"""Deterministic Lambda zips: same source, same bytes; dependencies for the Lambda platform."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from pipeline.aws.lambda_.package import (
    ImagePackage,
    deterministic_zip,
    function_files,
    image_package,
    package_function,
)
from pipeline.core.errors import PipelineError
from pipeline.testing import release


def _function(root: Path) -> Path:
    source = root / "fn"
    (source / "lib").mkdir(parents=True)
    (source / "app.py").write_text("from lib.util import greet\n\ndef handler(e, c):\n    return greet()\n")
    (source / "lib" / "__init__.py").write_text("")
    (source / "lib" / "util.py").write_text("def greet():\n    return 'hi'\n")
    (source / "bootstrap").write_text("#!/bin/sh\nexec python app.py\n")
    (source / "bootstrap").chmod(0o755)
    (source / "lib" / "__pycache__").mkdir()
    (source / "lib" / "__pycache__" / "util.cpython-311.pyc").write_bytes(b"\x00junk")
    (source / "tests").mkdir()
    (source / "tests" / "test_app.py").write_text("def test(): pass\n")
    return source


def _wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel ``tinydep 1.0`` (what pip installs offline in tests)."""
    files = {
        "tinydep/__init__.py": b"VALUE = 42\n",
        "tinydep-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n",
        "tinydep-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for name, data in files.items()
    ) + "tinydep-1.0.dist-info/RECORD,,\n"
    path = folder / "tinydep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr("tinydep-1.0.dist-info/RECORD", record)
    return path


def test_packaging_the_same_source_twice_gives_identical_bytes(tmp_path: Path) -> None:
    source = _function(tmp_path)
    first = package_function(source)
    for path in source.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))  # mtimes change, content does not

    second = package_function(source)

    assert first.data == second.data
    assert first.code_sha256 == second.code_sha256
    assert first.digest == "sha256:" + hashlib.sha256(first.data).hexdigest()


def test_entries_are_sorted_dated_1980_without_caches_or_tests(tmp_path: Path) -> None:
    package = package_function(_function(tmp_path))

    infos = zipfile.ZipFile(io.BytesIO(package.data)).infolist()
    names = [i.filename for i in infos]
    assert names == ["app.py", "bootstrap", "lib/__init__.py", "lib/util.py"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in infos}
    assert modes == {"app.py": 0o644, "bootstrap": 0o755, "lib/__init__.py": 0o644, "lib/util.py": 0o644}


def test_a_content_change_changes_the_code_sha256(tmp_path: Path) -> None:
    source = _function(tmp_path)
    before = package_function(source)
    (source / "lib" / "util.py").write_text("def greet():\n    return 'hello'\n")
    assert package_function(source).code_sha256 != before.code_sha256


def test_requirements_are_installed_for_the_lambda_platform_deterministically(tmp_path: Path) -> None:
    source = _function(tmp_path)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels)
    (source / "requirements.txt").write_text("tinydep==1.0\n")
    offline = ("--no-index", "--find-links", str(wheels))

    first = package_function(source, pip_args=offline)
    second = package_function(source, pip_args=offline)

    names = zipfile.ZipFile(io.BytesIO(first.data)).namelist()
    assert "tinydep/__init__.py" in names and "app.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert first.data == second.data


def test_a_requirement_without_a_lambda_wheel_is_a_clear_error(tmp_path: Path) -> None:
    source = _function(tmp_path)
    (source / "requirements.txt").write_text("no-such-package-anywhere==9.9\n")
    with pytest.raises(PipelineError, match=r"installing .*requirements\.txt for Lambda failed") as info:
        package_function(source, pip_args=("--no-index", "--find-links", str(tmp_path)))
    assert "manylinux2014_x86_64" in info.value.hint


def test_a_missing_source_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="is not a folder"):
        package_function(tmp_path / "nowhere")


def test_deterministic_zip_ignores_the_order_files_are_given_in(tmp_path: Path) -> None:
    files = function_files(_function(tmp_path))
    assert deterministic_zip(files.items()) == deterministic_zip(reversed(list(files.items())))


def test_container_images_are_deployed_by_digest() -> None:
    r = release("v3")
    tagged = type(r)(r.service, r.version, r.digest, r.commit, image="1.dkr.ecr/orders:v3")
    assert image_package(tagged) == ImagePackage(f"1.dkr.ecr/orders@{r.digest}")
    ported = type(r)(r.service, r.version, r.digest, r.commit, image=f"localhost:5000/team/orders@{r.digest}")
    assert image_package(ported) == ImagePackage(f"localhost:5000/team/orders@{r.digest}")
    with pytest.raises(PipelineError, match="has no image"):
        image_package(r)


def test_local_and_aws_packages_of_the_same_function_are_byte_identical(tmp_path: Path) -> None:
    from pipeline.aws.lambda_.package import package_function as aws_package
    from pipeline.local.lambda_.package import package_directory as local_package

    notify = Path(__file__).resolve().parents[2] / "services" / "notify"
    assert local_package(notify) == aws_package(notify).data
    tree = _function(tmp_path)
    (tree / "tests").mkdir(exist_ok=True)
    (tree / "tests" / "test_app.py").write_text("def test(): pass\n")
    (tree / "service.yaml").write_text("name: x\n")
    local = local_package(tree)
    assert local == aws_package(tree).data
    names = zipfile.ZipFile(io.BytesIO(local)).namelist()
    assert "service.yaml" not in names
    assert not any(n.startswith("tests/") for n in names)
