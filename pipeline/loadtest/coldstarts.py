"""Cold starts during a load run: per function, and per request chain.

A *request chain* is the loaded service and what it calls (``calls:``, transitively, deepest
last here: the order a request travels). A ``ColdStartSource`` (the local Lambda runtime's
per-version metrics; ``pipeline.local.lambda_.coldstarts``) gives each Lambda function of
the chain its invocations and cold starts in the run's window; warm-up and keep-warm pings
are not counted. The chain's line adds its functions' cold starts: the requests of the run
that met a cold start somewhere on their way (at most; another caller of a dependency in the
same window counts too).

Reading the source never changes the verdict of the run: when it fails, there is no report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.core.errors import PipelineError
from pipeline.markdown import md

__all__ = ["ColdStartReport", "ColdStartSource", "FunctionColdStarts", "cold_start_report", "markdown_lines"]


@dataclass(frozen=True, slots=True)
class FunctionColdStarts:
    """One function's invocations and cold starts in a window (warm-up pings excluded)."""

    service: str
    function: str
    invocations: int
    cold_starts: int

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "function": self.function, "invocations": self.invocations,
                "cold_starts": self.cold_starts}


class ColdStartSource(Protocol):
    """The functions of a request chain, in the order a request travels, with their figures."""

    def cold_starts(self, since: float, until: float) -> Sequence[FunctionColdStarts]:
        """Each Lambda function of the chain over ``[since, until)`` (epoch seconds)."""
        ...


@dataclass(frozen=True, slots=True)
class ColdStartReport:
    functions: tuple[FunctionColdStarts, ...]

    @property
    def chain(self) -> str:
        return " -> ".join(f.service for f in self.functions)

    @property
    def total(self) -> int:
        return sum(f.cold_starts for f in self.functions)

    @property
    def headline(self) -> str:
        """``cold starts: front 0/120, back 2/120 (chain front -> back: 2)``."""
        each = ", ".join(f"{f.service} {f.cold_starts}/{f.invocations}" for f in self.functions)
        chain = f" (chain {self.chain}: {self.total})" if len(self.functions) > 1 else ""
        return f"cold starts: {each}{chain}"

    def to_dict(self) -> dict[str, Any]:
        return {"functions": [f.to_dict() for f in self.functions], "chain": self.chain,
                "chain_cold_starts": self.total}


def cold_start_report(source: ColdStartSource | None, since: float, until: float) -> ColdStartReport | None:
    """The report of ``source`` over the run's window; None without a source, without Lambda
    functions in the chain, or when the source cannot be read."""
    if source is None:
        return None
    try:
        functions = tuple(source.cold_starts(since, until))
    except PipelineError:
        return None
    return ColdStartReport(functions) if functions else None


def markdown_lines(report: ColdStartReport) -> list[str]:
    """The "Cold starts" section: a row per function, then the chain's line."""
    lines = ["#### Cold starts", "",
             "Per Lambda function of the request chain (warm-up and keep-warm pings excluded):", "",
             "| function | invocations | cold starts |", "|---|---:|---:|"]
    lines += [f"| {md(f.service)} ({md(f.function)}) | {f.invocations} | {f.cold_starts} |"
              for f in report.functions]
    if len(report.functions) > 1:
        chain = " → ".join(md(f.service) for f in report.functions)
        lines += ["", f"Chain {chain}: {report.total} cold start(s) across its hops."]
    return [*lines, ""]
