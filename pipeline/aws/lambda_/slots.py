"""Which published version each slot of a Lambda service holds.

The two slots are two aliases of the function, ``blue`` and ``green``: they persist the
slot -> version mapping in AWS, so any process (a resumed deployment, an operator's
rollback) reads the same mapping. ``SlotVersions`` caches it for the compute, the router
and the metrics of one platform: the compute writes through it when it provisions a slot,
and the others read it without calling AWS again. One platform object serves one
deployment at a time (the engine holds the service's lock), so the cache cannot go stale
behind its back; ``forget()`` drops it anyway.
"""

from __future__ import annotations

from pipeline.aws.lambda_.api import LambdaApi
from pipeline.core.model import Slot

__all__ = ["SLOT_ALIASES", "SlotVersions"]

SLOT_ALIASES: dict[Slot, str] = {Slot.BLUE: "blue", Slot.GREEN: "green"}


class SlotVersions:
    """The slot aliases of one function, read once and written through."""

    def __init__(self, api: LambdaApi) -> None:
        self.api = api
        self._known: dict[Slot, str | None] = {}

    def version(self, slot: Slot) -> str | None:
        """The version ``slot`` holds; None when its alias does not exist."""
        if slot not in self._known:
            alias = self.api.alias(SLOT_ALIASES[slot])
            self._known[slot] = alias.version if alias else None
        return self._known[slot]

    def point(self, slot: Slot, version: str, note: str) -> None:
        """Put ``slot`` on ``version`` (``note`` goes to the alias description). Idempotent."""
        self._known.pop(slot, None)
        self.api.point_alias(SLOT_ALIASES[slot], version, None, note)
        self._known[slot] = version

    def forget(self) -> None:
        self._known.clear()
