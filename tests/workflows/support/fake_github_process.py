"""The fake GitHub API (``tests.support.fake_github``) in its own process, as act's jobs
reach it: a base URL for ``GITHUB_API_URL`` and JSON calls for seeding and reading back."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.workflows.support.files import REPO_ROOT


@dataclass
class FakeGitHubProcess:
    """``python3 -m tests.support.fake_github`` in its own process (act's jobs call it)."""

    state: Path
    log: Path
    proc: subprocess.Popen[str] | None = None
    url: str = ""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_github", "--port", "0", "--state", str(self.state)],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=self.log.open("w"), text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("http"), f"fake GitHub did not start: {self.url!r}"

    def call(self, method: str, path: str, body: object = None, token: str | None = None) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/vnd.github+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read().decode()
        return json.loads(text) if text else None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
