"""The router's pure decisions: ALB path patterns, rule priority, exact weighted picks,
per-second counters and their percentiles. No processes, no network."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from pipeline.core.model import Slot, Weights
from pipeline.local.http.counters import SlotCounters
from pipeline.local.http.rules import PathRule, RuleTable, WeightedPicker, parse_slot


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/orders*", "/orders", True),
        ("/orders*", "/orders/42/items", True),
        ("/orders*", "/Orders", False),  # case sensitive, like ALB
        ("/orders*", "/catalog/orders", False),
        ("/api/?/items", "/api/7/items", True),
        ("/api/?/items", "/api/77/items", False),
        ("/a.b", "/aXb", False),  # '.' is literal
        ("/x[1]", "/x[1]", True),  # so are brackets
    ],
)
def test_path_patterns_match_like_alb_rules(pattern: str, path: str, expected: bool) -> None:
    assert PathRule("svc", pattern, 1).matches(path) is expected


def _service(table: RuleTable, path: str) -> str | None:
    rule = table.match(path)
    return rule.service if rule else None


def test_lower_priority_number_wins_and_put_replaces_a_services_rule() -> None:
    table = RuleTable()
    table.put(PathRule("catchall", "/*", 100))
    table.put(PathRule("orders", "/orders*", 10))
    assert _service(table, "/orders/1") == "orders"
    assert _service(table, "/catalog") == "catchall"
    table.put(PathRule("orders", "/orders*", 200))  # now after the catch-all
    assert _service(table, "/orders/1") == "catchall"
    assert [r.service for r in table.rules()] == ["catchall", "orders"]
    table.remove("catchall")
    assert table.match("/catalog") is None


@pytest.mark.parametrize("green", [0, 1, 10, 33, 50, 90, 100])
def test_weighted_picker_gives_exact_proportions_over_every_hundred_picks(green: int) -> None:
    picker = WeightedPicker(Weights(100 - green, green))
    for _ in range(3):
        counts = Counter(picker.pick() for _ in range(100))
        assert counts[Slot.GREEN] == green
        assert counts[Slot.BLUE] == 100 - green


def test_weighted_picker_interleaves_instead_of_bursting() -> None:
    picker = WeightedPicker(Weights(90, 10))
    picks = [picker.pick() for _ in range(100)]
    positions = [i for i, slot in enumerate(picks) if slot is Slot.GREEN]
    gaps = {b - a for a, b in itertools.pairwise(positions)}
    assert gaps == {10}


@pytest.mark.parametrize("blue, green", [(100, 0), (0, 100), (99, 1), (1, 99), (50, 50), (30, 70), (97, 3)])
def test_weighted_picker_follows_smooth_weighted_round_robin_pick_by_pick(blue: int, green: int) -> None:
    """Nginx's smooth weighted round-robin, written out: each pick adds every weight to its
    score, takes the highest score (blue on a tie) and subtracts the total from it."""
    scores = {Slot.BLUE: 0, Slot.GREEN: 0}
    weights = {Slot.BLUE: blue, Slot.GREEN: green}
    expected = []
    for _ in range(300):
        for slot in scores:
            scores[slot] += weights[slot]
        best = Slot.BLUE if scores[Slot.BLUE] >= scores[Slot.GREEN] else Slot.GREEN
        scores[best] -= blue + green
        expected.append(best)
    picker = WeightedPicker(Weights(blue, green))
    assert [picker.pick() for _ in range(300)] == expected


def test_parse_slot_accepts_header_spellings_and_rejects_others() -> None:
    assert parse_slot(" Green ") is Slot.GREEN
    assert parse_slot("blue") is Slot.BLUE
    assert parse_slot("purple") is None
    assert parse_slot(None) is None


def test_counters_measure_a_window_at_one_second_resolution() -> None:
    counters = SlotCounters()
    for i in range(10):
        counters.record(1000.2 + i, 200, 4.0)  # one per second 1000..1009
    counters.record(1005.5, 503, 40.0)
    window = counters.window(1003.0, 1005.9)
    assert (window.requests, window.errors) == (4, 1)
    assert counters.window(2000, 2001).requests == 0
    assert counters.window(2000, 2001).p95_ms is None
    assert (counters.total_requests, counters.total_errors) == (11, 1)


def test_counters_drop_buckets_older_than_the_retention() -> None:
    counters = SlotCounters(retention=60)
    counters.record(1000.0, 200, 1.0)
    counters.record(1100.0, 200, 1.0)
    assert counters.window(0, 2000).requests == 1


def test_percentiles_are_the_nearest_rank_within_one_percent() -> None:
    counters = SlotCounters()
    for _ in range(95):
        counters.record(1000.5, 200, 8.5)  # 95 requests at 8.5 ms
    for _ in range(5):
        counters.record(1000.5, 200, 180.0)  # 5 requests at 180 ms
    window = counters.window(1000.0, 1001.0)
    assert window.p95_ms == pytest.approx(8.5, rel=0.01)
    assert window.p99_ms == pytest.approx(180.0, rel=0.01)
    assert window.p50_ms == pytest.approx(8.5, rel=0.01)
    assert counters.window(1001.0, 1002.0).p95_ms is None
