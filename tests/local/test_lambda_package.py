"""Deterministic Lambda packages: the same source tree always gives byte-identical zips."""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import pytest

from pipeline.core.errors import UsageError
from pipeline.local.lambda_.package import (
    extract_package,
    package_directory,
    sha256_hex,
    write_package,
)


def make_tree(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "util.py").write_text("X = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "util.cpython-311.pyc").write_bytes(b"\0junk")
    (root / "stale.pyc").write_bytes(b"\0junk")
    return root


def test_same_source_gives_byte_identical_zips_whatever_the_mtimes_and_umask(tmp_path: Path) -> None:
    first = package_directory(make_tree(tmp_path / "a"))
    tree = make_tree(tmp_path / "b")
    old = time.time() - 86400 * 400
    for path in tree.rglob("*"):
        os.utime(path, (old, old))
    (tree / "app.py").chmod(0o600)  # a different umask on another machine
    assert package_directory(tree) == first
    assert write_package(tree, tmp_path / "out" / "b.zip") == sha256_hex(first)
    assert (tmp_path / "out" / "b.zip").read_bytes() == first


def test_entries_are_sorted_dated_1980_with_fixed_modes_and_no_bytecode(tmp_path: Path) -> None:
    data = package_directory(make_tree(tmp_path / "src"))
    path = tmp_path / "p.zip"
    path.write_bytes(data)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == ["app.py", "pkg/__init__.py", "pkg/util.py", "run.sh"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in infos}
    assert modes == {"app.py": 0o644, "pkg/__init__.py": 0o644, "pkg/util.py": 0o644, "run.sh": 0o755}


def test_a_changed_file_changes_the_digest(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "src")
    before = sha256_hex(package_directory(tree))
    (tree / "pkg" / "util.py").write_text("X = 2\n")
    assert sha256_hex(package_directory(tree)) != before


def test_extract_restores_the_tree_and_refuses_paths_outside_it(tmp_path: Path) -> None:
    data = package_directory(make_tree(tmp_path / "src"))
    extract_package(data, tmp_path / "out")
    assert (tmp_path / "out" / "pkg" / "util.py").read_text() == "X = 1\n"
    assert os.access(tmp_path / "out" / "run.sh", os.X_OK)

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escaped.py", "x")
    with pytest.raises(UsageError, match="outside the package"):
        extract_package(evil.read_bytes(), tmp_path / "evil")
    assert not (tmp_path / "escaped.py").exists()
    assert not (tmp_path / "evil").exists()
    with pytest.raises(UsageError, match="not a zip file"):
        extract_package(b"not a zip", tmp_path / "bad")


def test_packaging_something_that_is_not_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is not a folder"):
        package_directory(tmp_path / "missing")
