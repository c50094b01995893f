"""Content Steering manifests for HLS (draft-pantos-hls-rfc8216bis §7) and DASH (DASH-IF CTS 001
"Content Steering for DASH", ETSI TS 103 998): pure building and parsing.

A steering manifest is JSON::

    {"VERSION": 1, "TTL": 5, "RELOAD-URI": "http://.../steer/bbb?session=s1&region=eu-west-1&have=a,b",
     "PATHWAY-PRIORITY": ["edge-eu-west-1b", "edge-eu-west-1a", "edge-us-east-1a", ...],
     "PATHWAY-CLONES": [{"BASE-ID": "edge-eu-west-1a", "ID": "edge-eu-west-1c",
                         "URI-REPLACEMENT": {"HOST": "127.0.0.1:8207"}}]}

* ``PATHWAY-PRIORITY`` is the session's ranking (``ranking.rank_pathways``): edges in rotation
  only, so a dead or drained edge, or an evacuated region, is not named. It must not be empty;
  when nothing is in rotation the pathways the playlist has are returned in their original
  order (the client keeps trying) and the answer is flagged ``degraded`` to the shell.
* Clients append ``_HLS_pathway`` (the pathway in use) and ``_HLS_throughput`` (bits/s) to the
  request; both feed the ranking (stickiness, headroom).
* DASH: the MPD's ``ContentSteering`` URI carries ``format=dash``; the answer has the same keys,
  ``PATHWAY-PRIORITY`` naming ``BaseURL@serviceLocation`` values (CTS 001 v1.0 and both dash.js 5
  and Shaka Player 5 read that key), plus the same list as ``SERVICE-LOCATION-PRIORITY`` (the name
  of the community-review draft, which video.js reads). Clients append ``_DASH_pathway`` and
  ``_DASH_throughput``: Shaka sends the location in use and its estimate; dash.js sends every
  location it has fetched from, quoted and comma-separated in order of first use, with one
  throughput each (empty when unknown). The last location with a throughput is taken as the one
  in use (after a failover it is the newest).
* ``have`` in our own query lists the pathways the client's playlist carries. A ranked edge not
  among them (it joined after the playlist was issued) comes with a ``PATHWAY-CLONES`` entry
  copying the first pathway the client has, with only the host replaced: every edge serves
  the same ``/t/{token}/{title}/...`` paths, so the token keeps working on the clone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import urlencode, urlsplit

from .config import PATHWAY_ID
from .ranking import Pathway

VERSION = 1


@dataclass(frozen=True, kw_only=True)
class SteerQuery:
    """What a steering request says about the client."""

    session: str
    region: str
    have: tuple[str, ...] = ()
    current: str | None = None
    throughput_bps: float | None = None
    format: str = "hls"


def _pathway_or_none(text: str) -> str | None:
    return text if text and PATHWAY_ID.match(text) else None


def _throughput_or_none(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def parse_steer_query(query: Mapping[str, str]) -> SteerQuery:
    """Read our own parameters and the client's ``_HLS_pathway``/``_HLS_throughput`` (or, with
    ``format=dash``, ``_DASH_pathway``/``_DASH_throughput``). Malformed client parameters are
    ignored (a client bug must not stop steering)."""
    have = tuple(p for p in query.get("have", "").split(",") if PATHWAY_ID.match(p))
    fmt = "dash" if query.get("format") == "dash" else "hls"
    current: str | None
    if fmt == "hls":
        current = _pathway_or_none(query.get("_HLS_pathway", ""))
        throughput = _throughput_or_none(query.get("_HLS_throughput", ""))
    else:
        names = [n.strip() for n in query.get("_DASH_pathway", "").strip().strip('"').split(",")]
        rates = [_throughput_or_none(t.strip()) for t in query.get("_DASH_throughput", "").split(",")]
        measured = [(n, r) for n, r in zip(names, rates) if r is not None and _pathway_or_none(n)]
        if measured:
            current, throughput = measured[-1]
        else:
            current, throughput = (_pathway_or_none(names[0]) if len(names) == 1 else None), None
    return SteerQuery(session=query.get("session", ""), region=query.get("region", ""),
                      have=have, current=current, throughput_bps=throughput, format=fmt)


def steer_uri(base_url: str, title: str, *, session: str, region: str, have: Sequence[str],
              format: str = "hls") -> str:
    """The steering URI of one session (SERVER-URI in the playlist or the MPD's ContentSteering,
    RELOAD-URI afterwards)."""
    fields = {"session": session, "region": region, "have": ",".join(have)}
    if format == "dash":
        fields["format"] = "dash"
    query = urlencode(fields, safe=",")
    return f"{base_url}/steer/{title}?{query}"


def pathway_clones(ranked: Sequence[Pathway], have: Sequence[str]) -> list[dict[str, Any]]:
    """A clone for every ranked pathway the client's playlist does not carry."""
    if not have:
        return []
    known = set(have)
    base = have[0]
    return [{"BASE-ID": base, "ID": p.id, "URI-REPLACEMENT": {"HOST": urlsplit(p.url).netloc}}
            for p in ranked if p.id not in known]


def steering_manifest(ranked: Sequence[Pathway], *, ttl_s: int, reload_uri: str,
                      have: Sequence[str], format: str = "hls") -> tuple[dict[str, Any], bool]:
    """The manifest for one session, and whether it is degraded (nothing in rotation)."""
    priority = [p.id for p in ranked]
    degraded = not priority
    if degraded:
        priority = list(dict.fromkeys(have))
    manifest: dict[str, Any] = {"VERSION": VERSION, "TTL": int(ttl_s), "RELOAD-URI": reload_uri,
                                "PATHWAY-PRIORITY": priority}
    if format == "dash":
        manifest["SERVICE-LOCATION-PRIORITY"] = list(priority)
    clones = pathway_clones(ranked, have)
    if clones:
        manifest["PATHWAY-CLONES"] = clones
    return manifest, degraded


class ManifestError(ValueError):
    """A steering manifest that breaks the spec; the message names the rule."""


def validate_manifest(doc: object) -> None:
    """Check ``doc`` against rfc8216bis §7.1 (used by tests and by the player's side too)."""
    if not isinstance(doc, dict):
        raise ManifestError("a steering manifest is a JSON object")
    if doc.get("VERSION") != 1:
        raise ManifestError("VERSION must be 1")
    ttl = doc.get("TTL")
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
        raise ManifestError("TTL must be a non-negative integer number of seconds")
    if "RELOAD-URI" in doc and not isinstance(doc["RELOAD-URI"], str):
        raise ManifestError("RELOAD-URI must be a string")
    if "SERVICE-LOCATION-PRIORITY" in doc and doc["SERVICE-LOCATION-PRIORITY"] != doc.get("PATHWAY-PRIORITY"):
        raise ManifestError("SERVICE-LOCATION-PRIORITY, when given, must equal PATHWAY-PRIORITY")
    priority = doc.get("PATHWAY-PRIORITY")
    if not isinstance(priority, list) or not priority:
        raise ManifestError("PATHWAY-PRIORITY must be a non-empty array")
    if len(set(priority)) != len(priority):
        raise ManifestError("PATHWAY-PRIORITY must not repeat a pathway")
    for p in priority:
        if not isinstance(p, str) or not PATHWAY_ID.match(p):
            raise ManifestError(f"bad pathway ID {p!r}")
    for clone in doc.get("PATHWAY-CLONES", []):
        if not isinstance(clone, dict) or not {"BASE-ID", "ID", "URI-REPLACEMENT"} <= set(clone):
            raise ManifestError("a pathway clone needs BASE-ID, ID and URI-REPLACEMENT")
        if not PATHWAY_ID.match(str(clone["ID"])) or not PATHWAY_ID.match(str(clone["BASE-ID"])):
            raise ManifestError(f"bad pathway ID in clone {clone!r}")
        if not isinstance(clone["URI-REPLACEMENT"], dict):
            raise ManifestError("URI-REPLACEMENT must be an object")
