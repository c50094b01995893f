"""Ranking: the ordered pathways (edges) for one session. Pure: a Snapshot in, a tuple out.

Order, best first:

1. Regions: the client's region, then its ``preference`` list, then every other region by name.
   Evacuated regions are left out entirely (their edges are out of rotation anyway).
2. Inside a region: edges in rotation by weighted rendezvous hashing (highest random weight) of
   ``(session, edge)``, weighted by the edge's capacity. The same session gets the same order
   on every call; an edge leaving moves only the sessions it had, an edge joining takes about
   its capacity share, so one edge is not hit by everyone.
3. Demotions inside a region: edges reporting load at or above ``overload_fraction`` of their
   capacity, and edges whose spare capacity is below the client's reported throughput
   (``_HLS_throughput``), go after the others of that region (still listed: better than
   another region).
4. Stickiness: if the client names the pathway it is on (``_HLS_pathway``) and that edge is in
   rotation, not demoted, and in the first region listed, it stays first, so a recovered edge
   does not pull sessions back and forth.

Edges out of rotation are never listed.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Mapping

from .config import EdgeEntry
from .registry import EdgeView, Snapshot

_TWO_64 = float(2**64)


@dataclass(frozen=True, kw_only=True)
class Pathway:
    """One ranked pathway: an edge in rotation and why it is where it is."""

    id: str
    region: str
    url: str
    demoted: str = ""
    """Empty, or why the edge went to the end of its region ("overloaded", "no headroom")."""


def rendezvous_score(session: str, edge: str, weight: float) -> float:
    """Weighted highest-random-weight score: ``-weight / ln(u)``, u uniform in (0, 1) from a hash."""
    digest = hashlib.blake2b(f"{session}\x00{edge}".encode(), digest_size=8).digest()
    u = (int.from_bytes(digest, "big") + 0.5) / _TWO_64
    return -weight / math.log(u)


def region_order(client_region: str, preference: Mapping[str, tuple[str, ...]],
                 evacuated: frozenset[str] | set[str]) -> tuple[str, ...]:
    """Regions to try for a client of ``client_region``, best first, evacuated ones left out."""
    order: list[str] = []
    for name in (client_region, *preference.get(client_region, ()), *sorted(preference)):
        if name in preference and name not in order and name not in evacuated:
            order.append(name)
    return tuple(order)


def _demotion(view: EdgeView, throughput_bps: float | None, overload_fraction: float) -> str:
    load = view.load_fraction
    if load is None:
        return ""
    if load >= overload_fraction:
        return "overloaded"
    if throughput_bps:
        spare_bps = (1.0 - load) * view.entry.capacity_mbps * 1e6
        if spare_bps < throughput_bps:
            return "no headroom"
    return ""


def rank_pathways(snapshot: Snapshot, *, client_region: str, session: str,
                  preference: Mapping[str, tuple[str, ...]], overload_fraction: float = 0.9,
                  throughput_bps: float | None = None, current: str | None = None) -> tuple[Pathway, ...]:
    """Edges in rotation for this session, best first (see the module docstring).

    ``preference`` maps every region name to its fallback regions (regions without an entry are
    unknown). ``current`` is the pathway the client is on, ``throughput_bps`` what it measures.
    """
    by_region: dict[str, list[EdgeView]] = {}
    for view in snapshot.edges:
        if view.in_rotation:
            by_region.setdefault(view.region, []).append(view)
    ranked: list[Pathway] = []
    for region in region_order(client_region, preference, snapshot.evacuated):
        views = by_region.get(region)
        if not views:
            continue
        scored = sorted(views, key=lambda v: rendezvous_score(session, v.name, v.entry.capacity_mbps),
                        reverse=True)
        first: list[Pathway] = []
        last: list[Pathway] = []
        for view in scored:
            why = _demotion(view, throughput_bps, overload_fraction)
            (last if why else first).append(_pathway(view.entry, why))
        tier = first + last
        if current and not ranked:
            for j, p in enumerate(tier):
                if p.id == current and not p.demoted:
                    tier.insert(0, tier.pop(j))
                    break
        ranked.extend(tier)
    return tuple(ranked)


def _pathway(entry: EdgeEntry, demoted: str) -> Pathway:
    return Pathway(id=entry.name, region=entry.region, url=entry.url, demoted=demoted)
