"""The load stage: locust in subprocesses, gated on its statistics, with reports.

Public API::

    LoadRunner(root, reports_root=None).run(service, environment, target, settings,
                                            workers=0, timeout=None) -> LoadResult
    LoadSettings(locustfile, users, spawn_rate, duration, user_class, thresholds)
    Thresholds(fail_ratio, p95_ms, min_rps)
    settings_from_config(load_config) -> LoadSettings | None
    ServiceStageRunner(...)            the ``StageRunner`` port: "test" and "load" stages
    ServiceStageRunner.from_config(project, service, environment)

Modules: ``settings`` (values), ``stats`` (figures from locust's JSON), ``gates`` (figures vs
thresholds), ``result`` (``LoadResult``), ``report`` (markdown, job summary), ``processes``
(subprocess lifecycle), ``runner`` (``LoadRunner``), ``smoke`` (test-stage checks),
``stages`` (``ServiceStageRunner``), ``ramp`` (step load: the plan and each step's figures),
``knee`` (steps judged: the knee and the first limit) and ``ramp_shape`` (the locust shape
class, loaded by locust and never imported). Locust itself is only ever run as a subprocess.
"""

from pipeline.loadtest.gates import GateCheck, evaluate
from pipeline.loadtest.result import LoadResult, ReportPaths
from pipeline.loadtest.runner import LoadRunner
from pipeline.loadtest.settings import LoadSettings, Thresholds, settings_from_config
from pipeline.loadtest.stages import ServiceStageRunner
from pipeline.loadtest.stats import (
    EndpointFigures,
    FailureSample,
    LoadFigures,
    figures_from_stats,
    percentile,
    read_failure_samples,
    read_figures,
)

__all__ = [
    "EndpointFigures",
    "FailureSample",
    "GateCheck",
    "LoadFigures",
    "LoadResult",
    "LoadRunner",
    "LoadSettings",
    "ReportPaths",
    "ServiceStageRunner",
    "Thresholds",
    "evaluate",
    "figures_from_stats",
    "percentile",
    "read_failure_samples",
    "read_figures",
    "settings_from_config",
]
