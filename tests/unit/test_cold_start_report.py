"""The load stage's cold-start lines: per function and per request chain."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.core.errors import TransientPlatformError
from pipeline.loadtest.coldstarts import FunctionColdStarts, cold_start_report, markdown_lines


class Source:
    def __init__(self, functions: Sequence[FunctionColdStarts], fail: bool = False) -> None:
        self.functions, self.fail, self.windows = functions, fail, []

    def cold_starts(self, since: float, until: float) -> Sequence[FunctionColdStarts]:
        self.windows.append((since, until))
        if self.fail:
            raise TransientPlatformError("cannot reach the local Lambda runtime", hint="start it")
        return self.functions


def test_a_chain_reports_each_function_and_the_chain_total() -> None:
    source = Source([FunctionColdStarts("front", "dev_front", 120, 0),
                     FunctionColdStarts("back", "dev_back", 120, 2)])
    report = cold_start_report(source, 10.0, 20.0)
    assert report is not None and source.windows == [(10.0, 20.0)]
    assert report.headline == "cold starts: front 0/120, back 2/120 (chain front -> back: 2)"
    lines = markdown_lines(report)
    assert "| front (dev\\_front) | 120 | 0 |" in lines and "| back (dev\\_back) | 120 | 2 |" in lines
    assert "Chain front → back: 2 cold start(s) across its hops." in lines
    assert report.to_dict()["chain_cold_starts"] == 2


def test_one_function_has_no_chain_line_and_no_source_no_report() -> None:
    report = cold_start_report(Source([FunctionColdStarts("notify", "dev_notify", 5, 1)]), 0, 1)
    assert report is not None and report.headline == "cold starts: notify 1/5"
    assert not any(line.startswith("Chain") for line in markdown_lines(report))
    assert cold_start_report(None, 0, 1) is None
    assert cold_start_report(Source([]), 0, 1) is None  # no Lambda function in the chain
    assert cold_start_report(Source([], fail=True), 0, 1) is None  # never changes the verdict
