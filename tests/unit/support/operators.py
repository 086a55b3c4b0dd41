"""A copy of the example project in which the OS account running the tests is an Ops member.

Approvals and break-glass overrides count only by a proven identity; on a local
environment that is the OS account (unverified, which local environments accept by
default). Tests that need an Ops approver list the account they run as, instead of
relying on a name the example config hands out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.identity import os_account
from tests.unit.support.project import REPO_ROOT

ME = os_account().name


def project_with_members(tmp_path: Path, organisation: str = "ops", *extra: str) -> Path:
    """The example project at ``tmp_path`` with ``extra`` (default: this OS account) added to
    ``organisations.<organisation>.members`` of its pipeline.yaml."""
    root = tmp_path / "project"
    skip = shutil.ignore_patterns("tests", ".pipeline")
    shutil.copytree(REPO_ROOT / "services", root / "services", ignore=skip)
    text = (REPO_ROOT / "pipeline.yaml").read_text(encoding="utf-8")
    line = {"ops": "    members: [carol]", "dev": "    members: [alice, bob]"}[organisation]
    assert line in text, f"the example pipeline.yaml no longer has {line.strip()!r}"
    names = ", ".join([*line.split("[", 1)[1].rstrip("]").split(", "), *(extra or (ME,))])
    (root / "pipeline.yaml").write_text(text.replace(line, f"    members: [{names}]", 1), encoding="utf-8")
    return root
