"""Configuration: ``pipeline.yaml`` and ``services/<name>/service.yaml``, parsed once at the edge.

Public API::

    load_project(root) -> Project         # every problem at once, or one ConfigError
    Project.service(name) / .environment(name) / .strategy(name)
    strategy_for(project, service_name) -> pipeline.core.plan.Strategy
    ServiceConfig.strategy(defaults) -> Strategy
    json_schema() -> {"pipeline.yaml": ..., "service.yaml": ...}
    parse_duration(value) -> float seconds

Modules: ``durations`` (duration strings), ``fields`` (base model, shared field types),
``project`` / ``service`` / ``deploy`` (the models), ``source`` (YAML with line numbers),
``messages`` (pydantic errors as problems), ``references`` (checks across names and
files), ``loader`` (``load_project``), ``schema`` (JSON schema). Only pydantic, PyYAML,
the standard library and ``pipeline.core`` are imported here.
"""

from pipeline.config.deploy import (
    AnalysisConfig,
    CheckConfig,
    DeployConfig,
    LinearConfig,
    StepConfig,
    TimeoutsConfig,
)
from pipeline.config.durations import parse_duration
from pipeline.config.loader import (
    PROJECT_FILE,
    SERVICE_FILE,
    SERVICES_DIR,
    Project,
    load_project,
    strategy_for,
)
from pipeline.config.project import (
    AwsPlatformConfig,
    Defaults,
    EnvironmentConfig,
    LocalPlatformConfig,
    Organisation,
    ProjectConfig,
    Requires,
)
from pipeline.config.schema import json_schema
from pipeline.config.service import (
    BuildConfig,
    EcsConfig,
    HealthCheckConfig,
    LambdaConfig,
    LoadConfig,
    LoadThresholds,
    LocalRunConfig,
    RouteConfig,
    ServiceConfig,
    UnitTestConfig,
)
from pipeline.config.source import Problem

__all__ = [
    "PROJECT_FILE",
    "SERVICES_DIR",
    "SERVICE_FILE",
    "AnalysisConfig",
    "AwsPlatformConfig",
    "BuildConfig",
    "CheckConfig",
    "Defaults",
    "DeployConfig",
    "EcsConfig",
    "EnvironmentConfig",
    "HealthCheckConfig",
    "LambdaConfig",
    "LinearConfig",
    "LoadConfig",
    "LoadThresholds",
    "LocalPlatformConfig",
    "LocalRunConfig",
    "Organisation",
    "Problem",
    "Project",
    "ProjectConfig",
    "Requires",
    "RouteConfig",
    "ServiceConfig",
    "StepConfig",
    "TimeoutsConfig",
    "UnitTestConfig",
    "json_schema",
    "load_project",
    "parse_duration",
    "strategy_for",
]
