"""The example project on a fresh clone, set up for tests, and the docs' shell blocks.

``example_clone()`` clones the committed repository (what a new user gets), then makes
the changes any test of it needs through documented settings only, committed as one
commit: free router ports; ``max_pause`` (every timed pause, bake and ``keep_previous``
capped) in every local environment, a higher synthetic ``analysis.traffic.rate`` where one
is set, and a 3-second ``load.duration``, so that a deployment takes seconds, not minutes.
"""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from pipeline.clock import SystemClock
from pipeline.local.plane.lifecycle import plane_processes, read_plane, state_dir_of, stop_plane
from pipeline.local.state.sqlite_store import SqliteStateStore, open_sqlite

ROOT = Path(__file__).resolve().parents[3]
MAX_PAUSE = "2s"
RATE = 50  # synthetic requests per second: 10% of it gives 20 requests in 5 s
LOAD_SECONDS = "3s"

ENVIRON = {
    "PIPELINE_ACTOR": "alice",
    "GIT_AUTHOR_NAME": "alice", "GIT_AUTHOR_EMAIL": "alice@example.com",
    "GIT_COMMITTER_NAME": "alice", "GIT_COMMITTER_EMAIL": "alice@example.com",
    "NO_COLOR": "1", "COLUMNS": "120",
}
UNSET = ("GITHUB_ACTOR", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS")


def environ() -> dict[str, str]:
    """The environment the CLI runs in: a fixed actor and git identity, no CI variables."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    return {**env, **ENVIRON}


def random_listener_port() -> int:
    """A port below Linux's ephemeral range (32768-60999): a listener chosen there can be
    taken, between choosing and binding, by any process's outgoing connection."""
    return random.randrange(20_000, 32_000)


def free_port_pairs(n: int) -> list[int]:
    """``n`` ports p, each with p and p + 1 free on 127.0.0.1, all distinct."""
    ports: list[int] = []
    with ExitStack() as held:
        while len(ports) < n:
            port = random_listener_port()
            a = held.enter_context(socket.socket())
            b = held.enter_context(socket.socket())
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            ports.append(port)
    return ports


def git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, env=environ())
    return out.stdout.strip()


@dataclass
class Example:
    root: Path

    def store(self) -> SqliteStateStore:
        return open_sqlite(self.root / ".pipeline" / "state.db", SystemClock())[0]

    def pipeline(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pipeline", *args], cwd=self.root, capture_output=True, text=True,
                              timeout=timeout, env=environ(), check=False)

    def commit(self, files: dict[str, str], message: str) -> None:
        for name, text in files.items():
            (self.root / name).write_text(text)
        git(self.root, "add", *files)
        git(self.root, "commit", "-q", "-m", message)

    def stop(self) -> None:
        """Stop the plane of the clone; no process of it may be left."""
        state_dir = state_dir_of(self.root)
        info = read_plane(state_dir)
        stop_plane(state_dir)
        assert info is None or plane_processes(info.id) == []


def example_clone(where: Path, environments: str = "") -> Example:
    """A fresh clone of the committed project in ``where``, set up for tests (see above).

    ``environments``: extra environments (YAML lines indented under ``environments:``),
    with ``{port}`` placeholders filled with free ports.
    """
    root = where / "shop"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(root)], check=True, env=environ())
    config = (root / "pipeline.yaml").read_text()
    names = re.findall(r"local: \{port: (\d+)\}", config)
    extra = environments.count("{port}")
    ports = free_port_pairs(len(names) + extra)
    for old, new in zip(names, ports, strict=False):
        pause = f"\n    max_pause: {MAX_PAUSE}"
        config = config.replace(f"local: {{port: {old}}}", f"local: {{port: {new}}}{pause}")
    config = re.sub(r"traffic: \{rate: [\d.]+\}", f"traffic: {{rate: {RATE}}}", config)
    for port in ports[len(names):]:
        environments = environments.replace("{port}", str(port), 1)
    config = config.replace("\nenvironments:\n", "\nenvironments:\n" + environments, 1)
    (root / "pipeline.yaml").write_text(config)
    for service in (root / "services").glob("*/service.yaml"):
        text = re.sub(r"(\n  duration: )\S+", rf"\g<1>{LOAD_SECONDS}", service.read_text())
        service.write_text(text)
    git(root, "commit", "-q", "-am", "tests: free ports, short pauses and load stages")
    return Example(root)


def shell_blocks(markdown: str, skip: set[str]) -> list[tuple[str, str]]:
    """``(heading, code)`` of every ```sh block, except those under a heading in ``skip``."""
    blocks: list[tuple[str, str]] = []
    heading = ""
    for part in re.split(r"(^## .*$)", markdown, flags=re.M):
        if part.startswith("## "):
            heading = part[3:].strip()
            continue
        if heading in skip:
            continue
        blocks += [(heading, code) for code in re.findall(r"```sh\n(.*?)```", part, flags=re.S)]
    return blocks
