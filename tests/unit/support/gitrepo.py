"""Real git repositories for unit tests: commit files, run the CLI in-process."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import git

from pipeline.cli.main import main


def commit(repo: git.Repo, files: dict[str, str], message: str) -> str:
    """Write ``files`` (path -> text) into ``repo``'s work tree, commit them, return the sha."""
    root = Path(repo.working_tree_dir or ".")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    repo.index.add(list(files))
    return repo.index.commit(message).hexsha


PIPELINE_YAML = """\
project: shop
organisations:
  dev: {members: []}
environments:
  dev: {platform: local, owner: dev, local: {port: 18100}}
shared_paths: [pipeline.yaml, "loadtests/common*.py"]
"""


def service_yaml(name: str, test: str = "python -c pass") -> str:
    """A minimal ECS service.yaml whose unit tests are ``test``."""
    return textwrap.dedent(
        f"""\
        name: {name}
        kind: ecs
        owner: dev
        paths: [services/{name}/**, loadtests/{name}.py]
        build: {{context: services/{name}}}
        test: {{command: {json.dumps(test)}}}
        local: {{command: "python -m app"}}
        ecs:
          container: {name}
          port: 8080
          route: {{path: "/{name}*", priority: {10 + len(name)}}}
        """
    )


def shop(tmp_path: Path, services: tuple[str, ...] = ("catalog", "orders")) -> tuple[git.Repo, str]:
    """A committed project with ``services``; returns the repository and the first commit."""
    repo = git.Repo.init(tmp_path)
    files = {"pipeline.yaml": PIPELINE_YAML}
    for name in services:
        files[f"services/{name}/service.yaml"] = service_yaml(name)
        files[f"services/{name}/app.py"] = "print('v1')\n"
    return repo, commit(repo, files, "first")


def run(root: Path, *args: str) -> int:
    """``pipeline --root ROOT ARGS...`` in this process; its exit code."""
    return main(["--root", str(root), *args])
