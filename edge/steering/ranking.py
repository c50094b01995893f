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

import functools
import hashlib
import math
from dataclasses import dataclass
from typing import Mapping

from .registry import EdgeView, Snapshot

_TWO_64 = float(2**64)
_MASK64 = 2**64 - 1


@dataclass(frozen=True, kw_only=True)
class Pathway:
    """One ranked pathway: an edge in rotation and why it is where it is."""

    id: str
    region: str
    url: str
    demoted: str = ""
    """Empty, or why the edge went to the end of its region ("overloaded", "no headroom")."""


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@functools.lru_cache(maxsize=65536)
def _edge_hash(edge: str) -> int:
    return _hash64("edge\x00" + edge)


def _mix64(x: int) -> int:
    """splitmix64's finaliser: every input bit moves every output bit."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _score(session_hash: int, edge: str, weight: float) -> float:
    u = (_mix64(session_hash ^ _edge_hash(edge)) + 0.5) / _TWO_64
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
    by_region = snapshot.in_rotation_by_region
    ranked: list[Pathway] = []
    session_hash = _hash64(session)
    for region in region_order(client_region, preference, snapshot.evacuated):
        views = by_region.get(region)
        if not views:
            continue
        scored = sorted(views, key=lambda v: _score(session_hash, v.name, v.entry.capacity_mbps), reverse=True)
        first: list[Pathway] = []
        last: list[Pathway] = []
        for view in scored:
            why = _demotion(view, throughput_bps, overload_fraction)
            entry = view.entry
            (last if why else first).append(_pathway(entry.name, entry.region, entry.url, why))
        tier = first + last
        if current and not ranked:
            for j, p in enumerate(tier):
                if p.id == current and not p.demoted:
                    tier.insert(0, tier.pop(j))
                    break
        ranked.extend(tier)
    return tuple(ranked)


@functools.lru_cache(maxsize=65536)
def _pathway(name: str, region: str, url: str, demoted: str) -> Pathway:
    return Pathway(id=name, region=region, url=url, demoted=demoted)
