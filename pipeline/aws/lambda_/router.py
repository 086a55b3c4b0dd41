"""``LambdaAliasRouter``: the TrafficRouter port as the routing weights of one alias.

The alias users call (``live`` by default) routes between the versions the two slot
aliases point at (see ``LambdaCompute``). For a split, the alias's primary
``FunctionVersion`` stays on the version it already serves (the stable one) and
``RoutingConfig.AdditionalVersionWeights`` gives the other version its fraction
(percent / 100). All traffic to one slot is that slot's version with no extra weights,
which is also how a deployment finalizes (alias on the new version) and rolls back (alias
back on the old version).

``set_weights`` reads the alias first and writes only when it differs, so repeating it
(or rolling back before any weight moved) leaves the alias untouched; the write carries
the ``RevisionId`` read, so an alias someone changed in between is not overwritten
(``Conflict``, a transient error: the engine retries the step, reading it again). ``get_weights``
reads the alias back and maps versions to slots; an alias that serves a version neither
slot holds reads as None (no route yet). When both slots hold the same version (the same
code and settings deployed twice), any split is equivalent; the requested split is kept
in the alias description so that it reads back.
"""

from __future__ import annotations

from pipeline.aws.lambda_.api import AliasState, LambdaApi
from pipeline.aws.lambda_.slots import SlotVersions
from pipeline.core.errors import PlatformError
from pipeline.core.model import Slot, Weights

__all__ = ["LambdaAliasRouter"]

IAM_ACTIONS: frozenset[str] = frozenset({"lambda:GetAlias", "lambda:CreateAlias", "lambda:UpdateAlias"})


class LambdaAliasRouter:
    """Weights between the blue and green versions on alias ``alias`` of one function."""

    def __init__(self, api: LambdaApi, alias: str = "live", slots: SlotVersions | None = None) -> None:
        self.api = api
        self.alias = alias
        self.slots = slots or SlotVersions(api)

    def set_weights(self, weights: Weights) -> None:
        versions = self._slot_versions()
        current = self.api.alias(self.alias)
        primary, extra = self._routing(weights, versions, current)
        note = weights.note()
        same_route = current is not None and current.version == primary and dict(current.weights) == extra
        split_matters = versions[Slot.BLUE] != versions[Slot.GREEN]
        if same_route and (split_matters or (current is not None and current.description == note)):
            return  # already so: never touch the alias for nothing
        # RevisionId: a concurrent change of the alias fails this write instead of being lost
        self.api.point_alias(self.alias, primary, extra, note, current.revision_id if current else "")

    def get_weights(self) -> Weights | None:
        current = self.api.alias(self.alias)
        if current is None:
            return None
        versions = self._slot_versions()
        blue, green = versions[Slot.BLUE], versions[Slot.GREEN]
        if blue is not None and blue == green:
            noted = Weights.from_note(current.description)
            if current.version == blue and not current.weights and noted is not None:
                return noted
        shares = {current.version: 1.0 - sum(f for _, f in current.weights), **dict(current.weights)}
        if not set(shares) <= {blue, green}:
            return None  # the alias serves a version that is in neither slot
        percent_blue = round(shares.get(blue or "", 0.0) * 100)
        return Weights(percent_blue, 100 - percent_blue)

    def _slot_versions(self) -> dict[Slot, str | None]:
        return {slot: self.slots.version(slot) for slot in Slot}

    def _routing(
        self, weights: Weights, versions: dict[Slot, str | None], current: AliasState | None
    ) -> tuple[str, dict[str, float]]:
        """(primary version, extra weights) for ``weights``; the primary stays put on a split."""
        for slot in Slot:
            version = versions[slot]
            if weights.of(slot) == 100 and version is not None:
                return version, {}
        missing = [str(slot) for slot in Slot if versions[slot] is None and weights.of(slot) > 0]
        if missing:
            raise PlatformError(
                f"cannot route traffic of {self.api.function} to {', '.join(missing)}: "
                "no version is provisioned in that slot",
                hint="the slot alias is missing; deploy again so the slot is provisioned first",
            )
        blue, green = versions[Slot.BLUE] or "", versions[Slot.GREEN] or ""
        if blue == green:
            return blue, {}
        if current is not None and current.version in (blue, green):
            primary = current.version
        else:
            primary = blue if weights.blue >= weights.green else green
        other = green if primary == blue else blue
        other_slot = Slot.GREEN if other == green else Slot.BLUE
        return primary, {other: weights.of(other_slot) / 100}
