"""``loadtest.live``: reading locust's statistics while it runs and reporting them to a watcher.

The CSV files are written here in locust 2.47's ``--csv`` format; the process wait and the
clock are stand-ins that advance time instantly, so no test sleeps. (A real locust run
reporting live figures is in ``tests/local/test_loadtest_live.py``.)
"""

from __future__ import annotations

from pathlib import Path

from pipeline.console.progress import load_text
from pipeline.loadtest.live import LiveLoad, current_watcher, follow, read_totals, watching

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\n"
)


def stats(requests: int, failures: int, rps: float) -> str:
    row = f"{requests},{failures},12,14.5,3,80,2.0,{rps},0.1,12,14,16,17,20,25,30,40,80,80,80\n"
    return HEADER + f"GET,/orders,{row}" + f",Aggregated,{row}"


class Process:
    """Exits with 0 at ``exits_at`` on its clock; writes ``writes[t]`` to the stats file at t."""

    def __init__(self, csv: Path, exits_at: float | None, writes: dict[float, str]) -> None:
        self.t = 0.0
        self.csv = csv
        self.exits_at = exits_at
        self.writes = writes
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.t

    def wait(self, until: float) -> int | None:
        self.waits.append(until)
        if self.exits_at is not None and self.exits_at <= until:
            self.t = self.exits_at
            return 0
        self.t = until
        if until in self.writes:
            self.csv.write_text(self.writes[until], encoding="utf-8")
        return None


def test_reads_the_aggregated_row_of_locusts_stats(tmp_path: Path) -> None:
    csv = tmp_path / "stats_stats.csv"
    csv.write_text(stats(1200, 3, 40.5), encoding="utf-8")
    assert read_totals(csv) == (1200, 3, 40.5)


def test_a_file_missing_half_written_or_without_totals_yields_nothing(tmp_path: Path) -> None:
    csv = tmp_path / "stats_stats.csv"
    assert read_totals(csv) is None
    csv.write_text(HEADER, encoding="utf-8")
    assert read_totals(csv) is None
    csv.write_text(HEADER + ",Aggregated,12", encoding="utf-8")
    assert read_totals(csv) is None


def test_without_a_watcher_it_only_waits(tmp_path: Path) -> None:
    process = Process(tmp_path / "stats_stats.csv", exits_at=5.0, writes={})
    assert follow(process.wait, 30.0, process.csv, service="orders", duration=5, clock=process.clock) == 0
    assert process.waits == [30.0]


def test_a_watcher_gets_the_figures_every_second_until_the_process_exits(tmp_path: Path) -> None:
    csv = tmp_path / "stats_stats.csv"
    process = Process(csv, exits_at=3.5, writes={2.0: stats(40, 0, 40.0), 3.0: stats(80, 1, 40.0)})
    seen: list[LiveLoad] = []
    with watching(seen.append):
        code = follow(process.wait, 30.0, csv, service="orders", duration=3, clock=process.clock)
    assert code == 0
    assert seen == [
        LiveLoad("orders", 1.0, 3, 0, 0, 0.0),  # nothing written yet
        LiveLoad("orders", 2.0, 3, 40, 0, 40.0),
        LiveLoad("orders", 3.0, 3, 80, 1, 40.0),
    ]
    assert current_watcher() is None  # the watcher ends with its context


def test_a_run_past_its_deadline_returns_none(tmp_path: Path) -> None:
    process = Process(tmp_path / "stats_stats.csv", exits_at=None, writes={})
    seen: list[LiveLoad] = []
    with watching(seen.append):
        code = follow(process.wait, 2.5, process.csv, service="orders", duration=1, clock=process.clock)
    assert code is None
    assert process.waits == [1.0, 2.0, 2.5]
    assert [live.remaining for live in seen] == [0.0, 0.0]


def test_the_chain_cold_starts_join_the_live_figures(tmp_path: Path) -> None:
    csv = tmp_path / "stats_stats.csv"
    process = Process(csv, exits_at=2.5, writes={2.0: stats(40, 0, 40.0)})
    lines = iter(["cold starts: front 0/10, back 1/10 (chain front -> back: 1)",
                  "cold starts: front 0/40, back 1/40 (chain front -> back: 1)"])
    seen: list[LiveLoad] = []
    with watching(seen.append):
        follow(process.wait, 30.0, csv, service="front", duration=2, clock=process.clock,
               cold_starts=lambda: next(lines))
    assert [live.cold_starts for live in seen] == [
        "cold starts: front 0/10, back 1/10 (chain front -> back: 1)",
        "cold starts: front 0/40, back 1/40 (chain front -> back: 1)",
    ]
    assert load_text(seen[-1]) == ("40 requests, 0 failed, 40.0 rps; "
                                   "cold starts: front 0/40, back 1/40 (chain front -> back: 1)")
