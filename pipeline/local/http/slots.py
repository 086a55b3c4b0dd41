"""What a router keeps per service (its route) and per slot (what its answers need)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.model import Slot, Weights
from pipeline.local.http.counters import SlotCounters
from pipeline.local.http.proxy import tag_lines
from pipeline.local.http.rules import PathRule, WeightedPicker
from pipeline.local.replicas.supervisor import SlotKey


class SlotTarget:
    """A slot's key, replica set, answer tags (also as header lines) and counters."""

    __slots__ = ("counters", "key", "replicas", "tag_lines", "tags")

    def __init__(self, key: SlotKey, replicas: object, tags: dict[str, str], counters: SlotCounters) -> None:
        self.key = key
        self.replicas = replicas
        self.tags = tags
        self.tag_lines = tag_lines(tags)
        self.counters = counters


@dataclass
class ServiceRoute:
    """A service's routing state on one environment's listeners (mutated by the control API)."""

    rule: PathRule
    picker: WeightedPicker | None = None
    test_slot: Slot | None = None

    @property
    def weights(self) -> Weights | None:
        return self.picker.weights if self.picker else None
