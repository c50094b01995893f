"""The edge registry: which edges exist (topology + heartbeats) and which are in rotation now.

Pure and clock-free: every question takes ``now_s`` (the caller's monotonic seconds). An edge is
in rotation when all of these hold, checked in this order (the first failure is the reason):

    region not evacuated        -> "region evacuated"
    heard from at least once    -> "no heartbeat yet"
    last heartbeat fresh        -> "missed heartbeats"   (now_s - received_s > heartbeat_timeout_s)
    last status "ok"            -> "draining" / "unhealthy"

and it returns as soon as a fresh "ok" heartbeat arrives. An edge that is not in the topology
but heartbeats with its ``url`` and a known ``region`` is added (that is how an edge started
after the playlist was issued reaches players: ``PATHWAY-CLONES``). A known edge whose heartbeat
says ``https://`` at the address the topology names with ``http://`` (or the other way round) is
taken at its word: it knows what it serves, and players get that URL.

Heartbeat body (JSON, from ``edge/``): ``name`` and ``status`` (ok | draining | unhealthy) are
required; ``region``, ``url``, ``capacity_mbps`` and load figures are optional. The load is read
from ``load_fraction`` (0..1), else from ``egress_bps`` or ``bytes_out_per_s`` (what edge/ sends)
against the edge's capacity, at the top level or inside a ``load`` object; everything else is
kept as reported.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Mapping

from .config import PATHWAY_ID, EdgeEntry, SteeringInputs

STATUSES = ("ok", "draining", "unhealthy")


class HeartbeatError(ValueError):
    """A heartbeat body that cannot be used; the message says why (answered with 400)."""


class UnknownEdge(HeartbeatError):
    """A heartbeat from an edge the registry does not know and cannot add (answered with 404)."""


@dataclass(frozen=True, kw_only=True)
class Heartbeat:
    """The last heartbeat of one edge, as kept by the registry."""

    name: str
    status: str
    received_s: float
    load_fraction: float | None = None
    reported: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class EdgeClaims:
    """What a heartbeat says about the edge itself, as sent (None: not sent): ``region``, ``url`` and
    ``capacity_mbps`` register an edge the topology lacks (checked then); ``egress_bps`` (bits per
    second, from ``egress_bps`` or ``bytes_out_per_s``) gives the load when no ``load_fraction`` came."""

    region: object = None
    url: object = None
    capacity_mbps: object = None
    egress_bps: float | None = None


@dataclass(frozen=True, kw_only=True)
class EdgeView:
    """One edge as answers see it at one instant."""

    entry: EdgeEntry
    in_rotation: bool
    reason: str
    """"in rotation" or why not."""
    load_fraction: float | None = None
    last_heartbeat_age_s: float | None = None

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def region(self) -> str:
        return self.entry.region


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """Every edge at ``now_s``, plus the evacuated regions; ranking works on this."""

    now_s: float
    edges: tuple[EdgeView, ...]
    evacuated: frozenset[str]
    valid_until_s: float
    """The answer may change by itself (a heartbeat going stale) at this instant."""

    def in_rotation(self) -> tuple[EdgeView, ...]:
        return tuple(e for e in self.edges if e.in_rotation)

    @functools.cached_property
    def in_rotation_by_region(self) -> dict[str, tuple[EdgeView, ...]]:
        """Edges in rotation grouped by region (computed once per snapshot; snapshots are reused)."""
        groups: dict[str, list[EdgeView]] = {}
        for view in self.edges:
            if view.in_rotation:
                groups.setdefault(view.region, []).append(view)
        return {region: tuple(views) for region, views in groups.items()}


def rotation(entry: EdgeEntry, last: Heartbeat | None, *, evacuated: bool, now_s: float,
             heartbeat_timeout_s: float) -> tuple[bool, str]:
    """Is ``entry`` in rotation at ``now_s``, and why (not)? See the module docstring."""
    if evacuated:
        return False, "region evacuated"
    if last is None:
        return False, "no heartbeat yet"
    if now_s - last.received_s > heartbeat_timeout_s:
        return False, "missed heartbeats"
    if last.status != "ok":
        return False, last.status
    return True, "in rotation"


def parse_heartbeat(body: object, now_s: float) -> tuple[Heartbeat, EdgeClaims]:
    """Check a heartbeat body; return the Heartbeat and what it claims about the edge."""
    if not isinstance(body, dict):
        raise HeartbeatError("heartbeat must be a JSON object")
    name, status = body.get("name"), body.get("status")
    if not isinstance(name, str) or not PATHWAY_ID.match(name):
        raise HeartbeatError("heartbeat needs 'name' (letters, digits, '.', '-', '_')")
    if status not in STATUSES:
        raise HeartbeatError(f"heartbeat 'status' must be one of {', '.join(STATUSES)}, got {status!r}")
    raw_load = body.get("load")
    load: dict[object, object] = raw_load if isinstance(raw_load, dict) else {}
    fraction = _number(body.get("load_fraction", load.get("load_fraction")))
    egress_bps = _number(body.get("egress_bps", load.get("egress_bps")))
    if egress_bps is None:
        bytes_per_s = _number(body.get("bytes_out_per_s", load.get("bytes_out_per_s")))
        egress_bps = None if bytes_per_s is None else bytes_per_s * 8
    claims = EdgeClaims(region=body.get("region"), url=body.get("url"), capacity_mbps=body.get("capacity_mbps"),
                        egress_bps=egress_bps)
    return Heartbeat(name=name, status=status, received_s=now_s, load_fraction=fraction,
                     reported=dict(body)), claims


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


class Registry:
    """The mutable state (edges, their last heartbeats, evacuated regions); answers are pure."""

    def __init__(self, inputs: SteeringInputs, *, heartbeat_timeout_s: float) -> None:
        self.regions = {r.name: r for r in inputs.regions}
        self.edges: dict[str, EdgeEntry] = {e.name: e for e in inputs.edges}
        self.heartbeats: dict[str, Heartbeat] = {}
        self.evacuated: set[str] = set()
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self._snapshot: Snapshot | None = None

    def record_heartbeat(self, body: object, now_s: float) -> EdgeEntry:
        """Keep one heartbeat (adding the edge if it is new and says where it is)."""
        beat, claims = parse_heartbeat(body, now_s)
        entry = self.edges.get(beat.name)
        if entry is None:
            entry = self._register(beat.name, claims)
        elif claims.region is not None and claims.region != entry.region:
            raise HeartbeatError(f"edge {beat.name} is in region {entry.region}, "
                                 f"not {claims.region!r}")
        elif isinstance(claims.url, str) and claims.url != entry.url and _same_but_scheme(claims.url, entry.url):
            entry = replace(entry, url=claims.url)  # it serves HTTPS where the topology said http (or back)
            self.edges[beat.name] = entry
        if beat.load_fraction is None and claims.egress_bps is not None:
            beat = Heartbeat(name=beat.name, status=beat.status, received_s=now_s,
                             load_fraction=claims.egress_bps / (entry.capacity_mbps * 1e6),
                             reported=beat.reported)
        self.heartbeats[beat.name] = beat
        self._snapshot = None
        return entry

    def _register(self, name: str, claims: EdgeClaims) -> EdgeEntry:
        region, url = claims.region, claims.url
        if not isinstance(region, str) or not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise UnknownEdge(f"unknown edge {name!r}: not in the topology, and its heartbeat "
                              "does not carry 'region' and an http(s) 'url'")
        if region not in self.regions:
            raise UnknownEdge(f"edge {name}: unknown region {region!r} "
                              f"(known: {', '.join(sorted(self.regions))})")
        capacity = _number(claims.capacity_mbps) or 1000.0
        try:
            entry = EdgeEntry(name=name, region=region, url=url, capacity_mbps=capacity)
        except ValueError as e:
            raise HeartbeatError(str(e)) from None
        self.edges[name] = entry
        return entry

    def evacuate(self, region: str) -> bool:
        """Take a region out; True if it was in. KeyError for an unknown region."""
        if region not in self.regions:
            raise KeyError(region)
        changed = region not in self.evacuated
        self.evacuated.add(region)
        self._snapshot = None
        return changed

    def restore(self, region: str) -> bool:
        """Put a region back; True if it was evacuated. KeyError for an unknown region."""
        if region not in self.regions:
            raise KeyError(region)
        changed = region in self.evacuated
        self.evacuated.discard(region)
        self._snapshot = None
        return changed

    def snapshot(self, now_s: float, *, reuse: bool = True) -> Snapshot:
        """Every edge at ``now_s``; reused while nothing changed and no heartbeat went stale
        (then ``last_heartbeat_age_s`` is as of the reused snapshot; ``reuse=False`` for exact ages)."""
        snap = self._snapshot
        if reuse and snap is not None and snap.now_s <= now_s < snap.valid_until_s:
            return snap
        views = []
        valid_until_s = math.inf
        timeout = self.heartbeat_timeout_s
        for entry in self.edges.values():
            last = self.heartbeats.get(entry.name)
            ok, reason = rotation(entry, last, evacuated=entry.region in self.evacuated,
                                  now_s=now_s, heartbeat_timeout_s=timeout)
            age = None if last is None else now_s - last.received_s
            if last is not None and age is not None and age <= timeout:
                valid_until_s = min(valid_until_s, last.received_s + timeout)
            views.append(EdgeView(entry=entry, in_rotation=ok, reason=reason,
                                  load_fraction=None if last is None else last.load_fraction,
                                  last_heartbeat_age_s=age))
        # strictly after the stale instant: "age > timeout" flips just past received_s + timeout
        snap = Snapshot(now_s=now_s, edges=tuple(views), evacuated=frozenset(self.evacuated),
                        valid_until_s=math.nextafter(valid_until_s, math.inf))
        self._snapshot = snap
        return snap


def _same_but_scheme(a: str, b: str) -> bool:
    """``http://H:P`` and ``https://H:P``: the same address, told apart only by the scheme."""
    sa, _, ra = a.partition("://")
    sb, _, rb = b.partition("://")
    return {sa, sb} == {"http", "https"} and ra.rstrip("/") == rb.rstrip("/")
