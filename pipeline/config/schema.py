"""JSON schemas of ``pipeline.yaml`` and ``service.yaml`` for editors (yaml-language-server).

They describe keys, types, defaults and formats. Rules that span several keys (``kind: ecs``
needs ``ecs:``; owners must be organisations) are enforced by ``load_project`` only.
"""

from __future__ import annotations

from typing import Any

from pipeline.config.project import ProjectConfig
from pipeline.config.service import ServiceConfig

__all__ = ["json_schema"]

_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """``{"pipeline.yaml": schema, "service.yaml": schema}``; each is a standalone
    draft 2020-12 schema with its own ``$defs``."""
    schemas: dict[str, Any] = {}
    for file, model in (("pipeline.yaml", ProjectConfig), ("service.yaml", ServiceConfig)):
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schemas[file] = {
            "$schema": _DIALECT,
            "title": file,
            **{k: v for k, v in schema.items() if k != "title"},
        }
    return schemas
