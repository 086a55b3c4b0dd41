"""Snapshot extraction keeps the "data" filter's rules on Pythons that lack the filter.

Debian 12's python3 is 3.11.2, whose tarfile has no ``filter=`` argument (added in 3.11.4):
the registry must extract there too, and still refuse members that escape the folder.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from pathlib import Path

import pytest

from pipeline.local.registry import _extract_data


def _archive(members: dict[str, bytes], *, symlink: tuple[str, str] | None = None) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink[0])
            info.type = tarfile.SYMTYPE
            info.linkname = symlink[1]
            tar.addfile(info)
    buf.seek(0)
    return tarfile.open(fileobj=buf)


@pytest.fixture(params=["builtin filter", "python without the filter"])
def filter_support(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "python without the filter":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return str(request.param)


def test_extracts_an_ordinary_snapshot(tmp_path: Path, filter_support: str) -> None:
    with _archive({"services/orders/app.py": b"print('hi')\n", "pipeline.yaml": b"project: x\n"}) as tar:
        _extract_data(tar, tmp_path)
    assert (tmp_path / "services/orders/app.py").read_text() == "print('hi')\n"
    assert (tmp_path / "pipeline.yaml").is_file()


def test_refuses_a_member_outside_the_folder(tmp_path: Path, filter_support: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with _archive({"../escape.txt": b"x"}) as tar, pytest.raises(tarfile.TarError):
        _extract_data(tar, dest)
    assert not (tmp_path / "escape.txt").exists()


def test_never_writes_an_absolute_member_outside_the_folder(tmp_path: Path, filter_support: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    outside = tmp_path / "outside.txt"
    with _archive({str(outside): b"x"}) as tar, contextlib.suppress(tarfile.TarError):
        _extract_data(tar, dest)  # the built-in filter strips the leading slash instead of refusing
    assert not outside.exists()


def test_refuses_a_symlink_pointing_outside(tmp_path: Path, filter_support: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with _archive({}, symlink=("link", "../../etc/passwd")) as tar, pytest.raises(tarfile.TarError):
        _extract_data(tar, dest)
    assert not (dest / "link").exists()
