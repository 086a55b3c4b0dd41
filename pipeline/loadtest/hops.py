"""Where the time goes in a load run: its traces per release, and the hops that grew.

The traces of a run (``Traces`` port: those that reached the loaded service during the run)
are grouped by the releases that served them: for every service a router routed the
request to, its slot and release (``router -> catalog`` with ``pipeline.release``). Services
every trace met on the same release are left out of a group's name, so a run of orders
while catalog's new release takes part of catalog's traffic shows two groups,
``catalog 1f2e3d4 (blue)`` and ``catalog 9a8b7c6 (green)``.

The *stable* group is the one served by each service's stable release, when the caller
knows them (``stable``: service -> (slot, release) serving per the deployment history; the
load command passes them), else the one that served the most traces (the stable release
while a new one gets less than half of the traffic). Every other group's hops are compared with it
(``pipeline.core.hops.compare``, ``HopLimits``) and the hops that grew are flagged: a
regression in a downstream call shows as that call's hop, even when the loaded service's
own spans did not change. With one group there is nothing to compare; the table still
says where its time goes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.core.hops import (
    RELEASE_KEY,
    ROUTER,
    SERVICE_KEY,
    SLOT_KEY,
    HopChange,
    HopLimits,
    Profile,
    Trace,
    compare,
    profile,
)
from pipeline.markdown import md

TABLE_ROWS = 12
"""Hops shown per release in the markdown table (largest share first; flagged ones always)."""

Route = tuple[tuple[str, str, str], ...]  # (service, slot, release) of each routed service


@dataclass(frozen=True, slots=True)
class ReleaseGroup:
    """The traces one combination of releases served, and (unless stable) how its hops changed."""

    label: str
    profile: Profile
    stable: bool
    changes: tuple[HopChange, ...] = ()

    @property
    def flagged(self) -> tuple[HopChange, ...]:
        return tuple(c for c in self.changes if c.flagged)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "stable": self.stable, "profile": self.profile.to_dict(),
                "changes": [c.to_dict() for c in self.changes]}


@dataclass(frozen=True, slots=True)
class HopReport:
    """Where the time of a run's traces goes, per release group, stable group first."""

    groups: tuple[ReleaseGroup, ...]
    limits: HopLimits = HopLimits()

    @property
    def flagged(self) -> tuple[tuple[str, HopChange], ...]:
        return tuple((g.label, c) for g in self.groups for c in g.flagged)

    @property
    def headline(self) -> str:
        """``hop grew: catalog db.query +301 ms p95 (catalog 9a8b7c6 (green))``, or ""."""
        grown = [f"{c.hop} +{c.growth_ms:.0f} ms p95 self time ({label})" for label, c in self.flagged]
        return f"hop grew: {'; '.join(grown)}" if grown else ""

    def to_dict(self) -> dict[str, Any]:
        flagged = [{"release": label, "hop": c.hop, "growth_ms": round(c.growth_ms, 3)}
                   for label, c in self.flagged]
        return {"groups": [g.to_dict() for g in self.groups], "flagged": flagged}


def route_of(trace: Trace) -> Route:
    """The (service, slot, release) of every service a router routed ``trace`` to."""
    found = {(str(s.attributes[SERVICE_KEY]), str(s.attributes.get(SLOT_KEY) or ""),
              str(s.attributes[RELEASE_KEY]))
             for s in trace if s.service == ROUTER and s.attributes.get(SERVICE_KEY)
             and s.attributes.get(RELEASE_KEY)}
    return tuple(sorted(found))


DEFAULT_LIMITS = HopLimits()


def hop_report(traces: Sequence[Trace], limits: HopLimits = DEFAULT_LIMITS,
               stable: Mapping[str, tuple[str, str]] | None = None) -> HopReport | None:
    """The report of ``traces`` (see the module docstring); None when there are none.
    ``stable``: the (slot, release) serving each service, when known."""
    grouped: dict[Route, list[Trace]] = defaultdict(list)
    for trace in traces:
        if trace:
            grouped[route_of(trace)].append(trace)
    if not grouped:
        return None
    labels = _labels(list(grouped))
    order = sorted(grouped, key=lambda r: (-len(grouped[r]), labels[r]))
    serving = stable or {}
    known = [r for r in order
             if r and all(serving.get(svc, (slot, rel)) == (slot, rel) for svc, slot, rel in r)]
    if serving and known:  # the group every stable release served comes first, whatever its size
        order.remove(known[0])
        order.insert(0, known[0])
    baseline = profile(grouped[order[0]])
    groups = [ReleaseGroup(labels[order[0]], baseline, True)]
    for route in order[1:]:
        mine = profile(grouped[route])
        groups.append(ReleaseGroup(labels[route], mine, False, compare(mine, baseline, limits)))
    return HopReport(tuple(groups), limits)


def _labels(routes: list[Route]) -> dict[Route, str]:
    """Each route named by the services whose release differs between routes."""
    common = set.intersection(*(set(r) for r in routes)) if len(routes) > 1 else set(routes[0])
    labels = {}
    for route in routes:
        varying = [f"{svc} {release} ({slot})" if slot else f"{svc} {release}"
                   for svc, slot, release in route if (svc, slot, release) not in common]
        labels[route] = ", ".join(varying) or ("all traces" if len(routes) == 1 else "no routed service")
    return labels


def markdown_lines(report: HopReport) -> list[str]:
    """The "Where the time goes" section: one table per release group, flagged hops marked."""
    lim = report.limits
    lines = ["#### Where the time goes", "",
             f"Per hop: p95 of its time, p95 of its self time (minus the calls it made) and its share "
             f"of the p95 end-to-end time; a hop is flagged when its p95 self time grew by "
             f"{lim.min_growth_ms:g} ms and {lim.min_growth_ratio:.0%} (or {lim.min_share_growth:.0%} "
             "more share) against the stable release.", ""]
    for group in report.groups:
        p = group.profile
        kind = "stable" if group.stable else "compared with the stable"
        lines += [f"{md(group.label)} ({kind}): {p.traces} traces, p95 {p.p95_ms:.1f} ms", "",
                  "| hop | p95 (ms) | self p95 (ms) | share of p95 | errors | vs stable |",
                  "|---|---:|---:|---:|---:|---|"]
        changes = {c.hop: c for c in group.changes}
        flagged = {c.hop for c in group.flagged}
        shown = [h for i, h in enumerate(p.hops) if i < TABLE_ROWS or h.hop in flagged]
        for h in shown:
            lines.append(f"| {md(h.hop)} | {h.p95_ms:.1f} | {h.self_p95_ms:.1f} | {h.share:.0%} | "
                         f"{h.error_rate:.1%} | {_versus(changes.get(h.hop), group.stable)} |")
        lines.append("")
    if report.flagged:
        lines += [f"- ❗ {md(report.headline)}", ""]
    return lines


def _versus(change: HopChange | None, stable: bool) -> str:
    if stable or change is None:
        return ""
    if change.stable is None:
        return "new hop" + (" ❗ grew" if change.flagged else "")
    growth = round(change.growth_ms, 1)
    text = f"{'+' if growth >= 0 else '−'}{abs(growth):.1f} ms self"
    return f"{text} ❗ grew" if change.flagged else text
