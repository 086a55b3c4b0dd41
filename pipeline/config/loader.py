"""``load_project``: every config file of a project, validated at once, or one ``ConfigError``.

The contract: for any content of ``pipeline.yaml`` and ``services/*/service.yaml``
(wrong types, lists instead of mappings, empty files, binary junk, non-UTF-8 bytes)
``load_project`` either returns a ``Project`` or raises a single ``ConfigError`` whose
``problems`` list *every* problem found, each as ``file:line: key.path: message`` with
the file relative to the project root. Nothing else escapes.

``project_file`` (``pipeline --project FILE``) reads environments, organisations and
defaults from another file than ``<root>/pipeline.yaml``, e.g. an Ops repository's, while
services still come from ``<root>/services/``; its problems name that file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from pipeline.config.calls import call_references
from pipeline.config.messages import describe_value, validation_problems
from pipeline.config.project import EnvironmentConfig, ProjectConfig
from pipeline.config.references import (
    local_environments,
    organisations,
    project_references,
    route_clashes,
    service_references,
)
from pipeline.config.service import ServiceConfig
from pipeline.config.source import Document, Problem, read_document
from pipeline.core.errors import ConfigError, NotFoundError
from pipeline.core.plan import Strategy
from pipeline.project_root import PROJECT_FILE, SERVICES_DIR

__all__ = ["PROJECT_FILE", "SERVICES_DIR", "SERVICE_FILE", "Project", "load_project", "strategy_for"]

SERVICE_FILE = "service.yaml"

_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class Project:
    """A validated project: ``pipeline.yaml`` and every service, keyed by folder name."""

    root: Path
    config: ProjectConfig
    services: dict[str, ServiceConfig]
    project_file: str = PROJECT_FILE  # as problems name it: relative to the root, or absolute

    def service(self, name: str) -> ServiceConfig:
        """The service ``name``; ``NotFoundError`` naming the known services otherwise."""
        try:
            return self.services[name]
        except KeyError:
            raise NotFoundError(
                f"unknown service '{name}': there is no {SERVICES_DIR}/{name}/{SERVICE_FILE}",
                hint=f"known services: {', '.join(sorted(self.services)) or 'none'}",
            ) from None

    def environment(self, name: str) -> EnvironmentConfig:
        """The environment ``name``; ``NotFoundError`` naming the known ones otherwise."""
        try:
            return self.config.environments[name]
        except KeyError:
            raise NotFoundError(
                f"unknown environment '{name}': it is not defined in {self.project_file}",
                hint=f"known environments: {', '.join(sorted(self.config.environments))}",
            ) from None

    def strategy(self, service: str) -> Strategy:
        """``strategy_for(self, service)``."""
        return strategy_for(self, service)


def strategy_for(project: Project, service_name: str) -> Strategy:
    """The service's deploy section expanded to a core ``Strategy``, with the project's
    default timeouts under the service's overrides. ``NotFoundError`` for unknown names."""
    return project.service(service_name).strategy(project.config.defaults)


def load_project(root: Path, project_file: Path | None = None) -> Project:
    """Read and validate ``root/pipeline.yaml`` (or ``project_file``) and every
    ``root/services/*/service.yaml``.

    Folders under ``services/`` whose names start with '.' or '_' are not services.
    Raises ``ConfigError`` listing every problem, sorted by file and line.
    """
    root = Path(root)
    shown = PROJECT_FILE if project_file is None else display_name(root, project_file)
    missing = "run from the project root, or create it" if project_file is None else "check --project"
    project_doc = read_document(root, shown, missing=missing)
    problems = list(project_doc.problems)
    config = _validate(project_doc, ProjectConfig, problems)
    problems += project_references(project_doc)
    orgs, local_envs = organisations(project_doc), local_environments(project_doc)
    folders = _service_folders(root, problems)
    services: dict[str, ServiceConfig] = {}
    docs: list[Document] = []
    for folder in folders:
        doc = read_document(root, f"{SERVICES_DIR}/{folder}/{SERVICE_FILE}", missing=_NO_SERVICE_FILE)
        docs.append(doc)
        problems += doc.problems
        service = _validate(doc, ServiceConfig, problems)
        problems += service_references(doc, folder, orgs, local_envs)
        if service is not None:
            services[folder] = service
    problems += route_clashes(docs)
    problems += call_references(zip(folders, docs, strict=True))
    if problems or config is None:
        raise ConfigError([str(p) for p in sorted(problems, key=lambda p: (p.file != shown, p.file, p.line))])
    return Project(root=root, config=config, services=services, project_file=shown)


def display_name(root: Path, file: Path) -> str:
    """``file`` as problems name it: relative to ``root`` when inside it, else absolute."""
    path = Path(file).resolve()
    try:
        return path.relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


_NO_SERVICE_FILE = (
    f"every folder in {SERVICES_DIR}/ is a service and needs a {SERVICE_FILE}; add one, or rename the "
    "folder to start with '_' if it is not a service"
)


def _validate(doc: Document, model: type[_M], problems: list[Problem]) -> _M | None:
    """``doc`` validated as ``model``; problems are appended, None when invalid."""
    if doc.failed:
        return None
    if doc.data is None:
        problems.append(doc.problem((), f"file is empty: it needs the keys {_required(model)}"))
        return None
    if not isinstance(doc.data, dict):
        problems.append(
            doc.problem(
                (),
                "the top level must be a mapping of keys to values "
                f"({_required(model)}), got {describe_value(doc.data)}",
            )
        )
        return None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        problems += validation_problems(doc, model, exc)
        return None


def _required(model: type[BaseModel]) -> str:
    return ", ".join(info.alias or name for name, info in model.model_fields.items() if info.is_required())


def _service_folders(root: Path, problems: list[Problem]) -> list[str]:
    base = root / SERVICES_DIR
    try:
        entries = list(base.iterdir()) if base.is_dir() else []
    except OSError as exc:
        problems.append(Problem(SERVICES_DIR, 1, "", f"cannot list the folder: {exc.strerror or exc}"))
        return []
    return sorted(p.name for p in entries if p.is_dir() and not p.name.startswith((".", "_")))

