"""Player-facing handlers: the playback API, the steered multivariant playlist, content steering.

    GET /play/{title}?device=D&region=R[&session=S][&format=hls|dash]
        -> 200 JSON (below); 400 unknown/missing device or region (the valid ones listed), or a
           format the device does not play; 404 unknown title, or a DASH request for a title
           published without an MPD; 503 no edge in rotation or no origin answering.
           Without ``format``, the device's preferred one (devices declare ``formats``), or its
           next one when the title lacks that manifest.
    GET /m/{token}/{title}/master.m3u8?session=S&region=R[&device=D]
        -> the steered multivariant playlist (``manifests.steered``), ranked for this session at
           the time it is fetched; 403 bad token (the same check as the edges').
    GET /m/{token}/{title}/manifest.mpd?session=S&region=R[&device=D]
        -> the steered MPD: one ``BaseURL serviceLocation`` per ranked edge and ``ContentSteering``.
    GET /steer/{title}?session=S&region=R&have=P1,P2[&_HLS_pathway=P&_HLS_throughput=BPS]
    GET /steer/{title}?session=S&region=R&have=P1,P2&format=dash[&_DASH_pathway=..&_DASH_throughput=..]
        -> the content-steering manifest (``content_steering.py``).

``/play`` answers::

    {"title", "session", "device", "region", "format": "hls" | "dash",
     "manifest_url":           the steered manifest of that format, served here,
     "edge_manifest_url":      the stored manifest of that format on the chosen edge,
     "multivariant_url":       steered HLS playlist served here (every pathway, with content steering),
     "edge": "edge-us-east-1a", "edge_multivariant_url": the stored playlist on the chosen edge,
     "pathways": [{"id", "region", "url", "base_url", "demoted"}...]  best first,
     "content_steering_uri", "steering_ttl_s", "token", "key_id", "token_expires_at_s"}

The playlist is served by the steering service, not the edge: only the control plane knows the
pathways, and the token in the URL path keeps it as protected as the edges' bytes.
"""
from __future__ import annotations

import json
import logging
import uuid
from types import MappingProxyType
from urllib.parse import urlencode

from aiohttp import web

from edge.tokens import sign_token, verify_token
from manifests import MPD_CONTENT_TYPE, EdgePathway, MpdError, PlaylistError, steer_mpd_text, steer_multivariant_text

from .config import MANIFEST_FORMATS
from .content_steering import parse_steer_query, steer_uri, steering_manifest
from .ranking import Pathway, rank_pathways
from .state import STATE, SteeringState
from .titles import TITLE_NAME, OriginUnavailable


log = logging.getLogger(__name__)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
#: Answers are per session (never cached) and readable by browser players from any origin.
NO_STORE = MappingProxyType({"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"})


def json_response(doc: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(doc, separators=(",", ":")).encode(), status=status,
                        content_type="application/json", headers={**NO_STORE, **(headers or {})})


def json_error(status: int, message: str, **extra: object) -> web.Response:
    headers = {"Retry-After": "1"} if status == 503 else None
    return json_response({"error": message, **extra}, status=status, headers=headers)


def _state(request: web.Request) -> SteeringState:
    return request.app[STATE]


def check_region(state: SteeringState, region: str) -> web.Response | None:
    if region in state.preference:
        return None
    what = "missing region" if not region else f"unknown region {region!r}"
    return json_error(400, what, valid_regions=sorted(state.preference))


def rank_for(state: SteeringState, *, region: str, session: str, current: str | None = None,
             throughput_bps: float | None = None) -> tuple[Pathway, ...]:
    snapshot = state.registry.snapshot(state.clock())
    return rank_pathways(snapshot, client_region=region, session=session, preference=state.preference,
                         overload_fraction=state.config.overload_fraction,
                         throughput_bps=throughput_bps, current=current)


async def play(request: web.Request) -> web.Response:
    state = _state(request)
    title = request.match_info["title"]
    q = request.query
    device, region = q.get("device", ""), q.get("region", "")
    if device not in state.devices:
        what = "missing device" if not device else f"unknown device {device!r}"
        return json_error(400, what, valid_devices=sorted(state.devices))
    bad = check_region(state, region)
    if bad is not None:
        return bad
    plays = state.devices[device]
    asked = q.get("format", "")
    if asked and asked not in MANIFEST_FORMATS:
        return json_error(400, f"unknown format {asked!r}", valid_formats=list(MANIFEST_FORMATS))
    if asked and asked not in plays:
        return json_error(400, f"device {device} does not play {asked} (it plays {', '.join(plays)})",
                          valid_formats=list(plays))
    if not TITLE_NAME.match(title):
        return json_error(404, f"unknown title {title!r}")
    try:
        doc = await state.catalog.title_json(title, region)
        fmt = asked or plays[0]
        if doc is not None and fmt == "dash" and await state.catalog.mpd(title, region) is None:
            if asked or "hls" not in plays:
                return json_error(404, f"title {title!r} has no DASH manifest (published before DASH: "
                                       "ingest it again)")
            fmt = "hls"  # the device's first choice is not there; its next one is
    except OriginUnavailable as e:
        return json_error(503, f"no origin answered: {e}")
    if doc is None:
        return json_error(404, f"unknown title {title!r}")
    session = q.get("session") or uuid.uuid4().hex
    ranked = rank_for(state, region=region, session=session)
    if not ranked:
        return json_error(503, "no edge in rotation")
    kid = state.active_key
    expires_at_s = int(state.wall_clock()) + state.config.token_ttl_s
    token = sign_token(kid, state.keys[kid], title, expires_at_s)
    have = [p.id for p in ranked[: state.config.max_pathways]]
    base = state.public_url
    query = urlencode({"session": session, "region": region, "device": device})
    state.metrics.sessions_started.labels(region=region, device=device).inc()
    log.debug("session started", extra={"kv": {"title": title, "session": session, "region": region,
                                               "device": device, "edge": ranked[0].id, "format": fmt}})
    entry = "manifest.mpd" if fmt == "dash" else "master.m3u8"
    return json_response({
        "title": title, "session": session, "device": device, "region": region, "format": fmt,
        "manifest_url": f"{base}/m/{token}/{title}/{entry}?{query}",
        "edge_manifest_url": f"{ranked[0].url}/t/{token}/{title}/{entry}",
        "multivariant_url": f"{base}/m/{token}/{title}/master.m3u8?{query}",
        "edge": ranked[0].id,
        "edge_multivariant_url": f"{ranked[0].url}/t/{token}/{title}/master.m3u8",
        "pathways": [{"id": p.id, "region": p.region, "url": p.url,
                      "base_url": f"{p.url}/t/{token}/{title}/", "demoted": p.demoted} for p in ranked],
        "content_steering_uri": steer_uri(base, title, session=session, region=region, have=have, format=fmt),
        "steering_ttl_s": state.config.steering_ttl_s,
        "token": token, "key_id": kid, "token_expires_at_s": expires_at_s,
    })


async def master(request: web.Request) -> web.Response:
    return await _steered(request, "hls")


async def mpd(request: web.Request) -> web.Response:
    return await _steered(request, "dash")


async def _steered(request: web.Request, fmt: str) -> web.Response:
    """The stored manifest of ``fmt``, steered for this session: every ranked edge a pathway
    (HLS) or a service location (DASH), with the steering server to ask."""
    state = _state(request)
    token, title = request.match_info["token"], request.match_info["title"]
    verdict = verify_token(token, state.keys, title, state.wall_clock())
    if not verdict.ok:
        return json_error(403, f"token refused: {verdict.reason}")
    region, session = request.query.get("region", ""), request.query.get("session", "")
    bad = check_region(state, region)
    if bad is not None:
        return bad
    try:
        stored = await (state.catalog.master(title, region) if fmt == "hls" else state.catalog.mpd(title, region))
    except OriginUnavailable as e:
        return json_error(503, f"no origin answered: {e}")
    if stored is None:
        return json_error(404, f"unknown title {title!r}" if fmt == "hls" else f"no DASH manifest for {title!r}")
    ranked = rank_for(state, region=region, session=session)[: state.config.max_pathways]
    if not ranked:
        return json_error(503, "no edge in rotation")
    server_uri = steer_uri(state.public_url, title, session=session, region=region, have=[p.id for p in ranked],
                           format=fmt)
    pathways = [EdgePathway(id=p.id, url=p.url) for p in ranked]
    try:
        if isinstance(stored, str):
            text = steer_multivariant_text(stored, pathways, token=token, title=title, server_uri=server_uri,
                                           initial_pathway=ranked[0].id)
        else:
            text = steer_mpd_text(stored, pathways, token=token, title=title, server_uri=server_uri,
                                  initial_pathway=ranked[0].id)
    except (PlaylistError, MpdError) as e:
        log.warning("stored manifest cannot be steered", extra={"kv": {"title": title, "error": e}})
        return json_error(502, f"stored manifest of {title!r} cannot be steered: {e}")
    return web.Response(text=text, content_type=PLAYLIST_TYPE if fmt == "hls" else MPD_CONTENT_TYPE,
                        headers=NO_STORE)


async def steer(request: web.Request) -> web.Response:
    state = _state(request)
    title = request.match_info["title"]
    q = parse_steer_query(request.query)
    bad = check_region(state, q.region)
    if bad is not None:
        return bad
    ranked = rank_for(state, region=q.region, session=q.session, current=q.current,
                      throughput_bps=q.throughput_bps)
    reload_uri = steer_uri(state.public_url, title, session=q.session, region=q.region, have=q.have,
                           format=q.format)
    doc, degraded = steering_manifest(ranked, ttl_s=state.config.steering_ttl_s, reload_uri=reload_uri,
                                      have=q.have, format=q.format)
    if not doc["PATHWAY-PRIORITY"]:
        return json_error(503, "no edge in rotation")
    state.metrics.steer_requests.labels(region=q.region, outcome="degraded" if degraded else "ok").inc()
    return json_response(doc)
