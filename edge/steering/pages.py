"""Pages for people on the steering service: the watch page, the status page, and what they load.

    GET /                        status page (static/status.html + status.js): regions, edges,
                                 titles, live sessions; reads /_/status every 2 s; evacuate and
                                 restore buttons send the admin key the page asks for as X-Admin-Key
    GET /_/status                the JSON behind it (``status_doc``)
    GET /watch/{title}           watch page (static/watch.html + watch.js); query, all optional:
                                 device, region, session, audio=LANG, subs=LANG|off,
                                 format=hls|dash (default: the device's), player=auto|native|hls.js
                                 (HLS) or dash.js|shaka (DASH), buffer_s (forward buffer),
                                 cmcd=query|header (the player sends CMCD, CTA-5004; default off)
                                 and sid (its CMCD session id; default the /play session)
    GET /static/{name}           the pages' own JS and CSS (this package's ``static/`` folder)
    GET /static/vendor/hls.min.js  hls.js as installed by npm (``package.json`` at the repo root);
                                 404 with a text saying how to install it when it is absent
    GET /static/vendor/dash.all.min.js, /static/vendor/shaka-player.compiled.js
                                 dash.js and Shaka Player, the same way (the DASH watch page)

hls.js (and the DASH players) are looked up in ``$VODSTACK_NODE_MODULES`` (a ``node_modules`` folder) when set, else in
the ``node_modules`` of the repository this package sits in, else in the working directory's.

Live sessions are seen, not reported: a middleware notes every ``/play``, steered-playlist and
``/steer`` request that names a session (title, region, device, the pathway in use from
``_HLS_pathway``, the client's ``_HLS_throughput``). A session is live while it was heard from
within ``live_window_s(steering_ttl_s)``: players that do content steering ask every TTL. The
book is pure (``now_s`` passed in) and bounded (the least recently heard sessions go first).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence

from aiohttp import web

from manifests import Title, TitleFormatError

from .content_steering import parse_steer_query
from .registry import Heartbeat, Snapshot
from .state import STATE, SteeringState
from .titles import TITLE_NAME, OriginUnavailable


log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
HLSJS_RELATIVE = Path("hls.js") / "dist" / "hls.min.js"
#: The players the pages load, by the name they are served under (``/static/vendor/{name}``):
#: their npm package and file inside ``node_modules``.
VENDOR = MappingProxyType({
    "hls.min.js": ("hls.js", HLSJS_RELATIVE),
    "dash.all.min.js": ("dash.js", Path("dashjs") / "dist" / "modern" / "umd" / "dash.all.min.js"),
    "shaka-player.compiled.js": ("Shaka Player", Path("shaka-player") / "dist" / "shaka-player.compiled.js"),
})
NODE_MODULES_ENV = "VODSTACK_NODE_MODULES"
#: The device class the watch page asks for when the URL names none (if the service knows it).
WATCH_DEFAULT_DEVICE = "laptop-chrome"
#: At most this many sessions and titles are remembered (least recently heard go first).
MAX_SESSIONS = 20_000
MAX_TITLES = 200
#: Titles whose title.json the status page summarises (most recently played first).
STATUS_TITLES = 20
#: Who plays on the watch page, by format (the first is the default).
HLS_PLAYERS = ("auto", "native", "hls.js")
DASH_PLAYERS = ("dash.js", "shaka")
#: How the watch page's player may send CMCD (``?cmcd=``): in the query or in CMCD-* headers.
CMCD_MODES = ("query", "header")
#: CTA-5004 caps a CMCD session id at 64 characters.
CMCD_SID_MAX = 64
STATIC_TYPES = MappingProxyType({".html": "text/html", ".js": "text/javascript", ".css": "text/css",
                                 ".svg": "image/svg+xml"})
NO_STORE = MappingProxyType({"Cache-Control": "no-store"})


def live_window_s(steering_ttl_s: float) -> float:
    """How long after its last request a session still counts as live: three steering TTLs (a
    content-steering client asks once per TTL), and never under 10 s."""
    return max(3.0 * steering_ttl_s, 10.0)


# -- the session book (pure) ----------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class SessionSeen:
    """One player session as the steering service has heard of it."""

    session: str
    title: str
    region: str
    device: str = ""
    pathway: str = ""
    """The edge it plays from: the one ``/play`` chose, then what ``_HLS_pathway`` says."""
    throughput_bps: float | None = None
    first_seen_s: float
    last_seen_s: float
    requests: int = 1


class SessionBook:
    """Sessions and titles heard of, bounded; every question takes ``now_s``."""

    def __init__(self, *, max_sessions: int = MAX_SESSIONS, max_titles: int = MAX_TITLES) -> None:
        self.max_sessions = max_sessions
        self.max_titles = max_titles
        self.sessions: OrderedDict[str, SessionSeen] = OrderedDict()
        self.titles: OrderedDict[str, float] = OrderedDict()
        """Titles ``/play`` answered for, with when; most recent last."""

    def note_title(self, title: str, now_s: float) -> None:
        self.titles.pop(title, None)
        self.titles[title] = now_s
        while len(self.titles) > self.max_titles:
            self.titles.popitem(last=False)

    def record(self, session: str, *, title: str, region: str, now_s: float, device: str = "",
               pathway: str = "", throughput_bps: float | None = None) -> SessionSeen:
        """Note one request of ``session``; empty fields keep what was known."""
        old = self.sessions.pop(session, None)
        if old is None:
            seen = SessionSeen(session=session, title=title, region=region, device=device, pathway=pathway,
                               throughput_bps=throughput_bps, first_seen_s=now_s, last_seen_s=now_s)
        else:
            seen = replace(old, title=title or old.title, region=region or old.region,
                           device=device or old.device, pathway=pathway or old.pathway,
                           throughput_bps=old.throughput_bps if throughput_bps is None else throughput_bps,
                           last_seen_s=now_s, requests=old.requests + 1)
        self.sessions[session] = seen
        while len(self.sessions) > self.max_sessions:
            self.sessions.popitem(last=False)
        return seen

    def live(self, now_s: float, window_s: float) -> list[SessionSeen]:
        """Sessions heard from within ``window_s``, most recently heard first."""
        out = []
        for seen in reversed(self.sessions.values()):
            if now_s - seen.last_seen_s > window_s:
                break  # ordered by last_seen_s: every older one is older still
            out.append(seen)
        return out


def _throughput(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw else None
    except ValueError:
        return None
    return value if value is not None and 0 < value < 1e13 else None


def observe_request(book: SessionBook, *, route: str, match_info: Mapping[str, str], query: Mapping[str, str],
                    status: int, body: bytes | None, now_s: float) -> None:
    """Note what one answered player-facing request says about its session (see the docstring)."""
    if status != 200:
        return
    title = match_info.get("title", "")
    session = query.get("session", "")
    pathway = ""
    if route == "play":
        book.note_title(title, now_s)
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            doc = {}
        session = session or str(doc.get("session", ""))
        pathway = str(doc.get("edge", ""))
    throughput = query.get("_HLS_throughput")
    if route == "steer":
        steered = parse_steer_query(query)
        pathway, throughput = steered.current or "", None
        if steered.throughput_bps is not None:
            throughput = str(steered.throughput_bps)
    if not session or len(session) > 200:
        return
    book.record(session, title=title, region=query.get("region", ""), device=query.get("device", ""),
                pathway=pathway[:200], throughput_bps=_throughput(throughput), now_s=now_s)


# -- the status document (pure) -------------------------------------------------------------------

def _num(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def edge_rows(snapshot: Snapshot, heartbeats: Mapping[str, Heartbeat],
              live: Sequence[SessionSeen]) -> list[dict[str, Any]]:
    """One row per edge: rotation, what its last heartbeat said, sessions playing from it."""
    per_edge: dict[str, int] = {}
    for s in live:
        per_edge[s.pathway] = per_edge.get(s.pathway, 0) + 1
    rows = []
    for view in snapshot.edges:
        beat = heartbeats.get(view.name)
        reported = dict(beat.reported) if beat is not None else {}
        status = beat.status if beat is not None else "silent"
        if view.reason == "missed heartbeats":
            status = "silent"
        rows.append({
            "name": view.name, "region": view.region, "url": view.entry.url,
            "in_rotation": view.in_rotation, "reason": view.reason, "status": status,
            "draining": beat is not None and beat.status == "draining" and view.reason != "missed heartbeats",
            "capacity_mbps": view.entry.capacity_mbps, "load_fraction": view.load_fraction,
            "bytes_out_per_s": _num(reported.get("bytes_out_per_s")),
            "hit_ratio": _num(reported.get("hit_ratio")), "byte_hit_ratio": _num(reported.get("byte_hit_ratio")),
            "active_connections": _num(reported.get("active_connections")),
            "ram_fullness": _num(reported.get("ram_fullness")), "disk_fullness": _num(reported.get("disk_fullness")),
            "last_heartbeat_age_s": None if view.last_heartbeat_age_s is None else round(view.last_heartbeat_age_s, 2),
            "sessions": per_edge.get(view.name, 0),
        })
    return rows


def region_rows(regions: Iterable[tuple[str, Sequence[str], Sequence[str]]], snapshot: Snapshot,
                live: Sequence[SessionSeen]) -> list[dict[str, Any]]:
    """One row per region (name, origin URLs, preference): evacuated, edges in rotation, sessions."""
    rows = []
    for name, origins, preference in regions:
        views = [v for v in snapshot.edges if v.region == name]
        rows.append({"name": name, "origins": list(origins), "preference": list(preference),
                     "evacuated": name in snapshot.evacuated, "edges": len(views),
                     "edges_in_rotation": sum(1 for v in views if v.in_rotation),
                     "sessions": sum(1 for s in live if s.region == name)})
    return rows


def title_row(title: str, doc: Title | None, last_played_s: float, now_s: float,
              live: Sequence[SessionSeen], problem: str = "") -> dict[str, Any]:
    """A title as the status page shows it, from its ``title.json`` (None: not readable now)."""
    row: dict[str, Any] = {"title": title, "last_played_age_s": round(now_s - last_played_s, 1),
                           "sessions": sum(1 for s in live if s.title == title), "problem": problem}
    if doc is not None:
        row.update({
            "duration_s": doc.duration_s, "layout": doc.layout,
            "video": [f"{v.id} {v.width}x{v.height}" for v in doc.video],
            "codecs": sorted({v.codec_family or v.codec for v in doc.video}),
            "audio": sorted({a.language for a in doc.audio}),
            "subtitles": sorted({s.language for s in doc.subtitles}),
        })
    return row


def session_rows(live: Sequence[SessionSeen], now_s: float, limit: int = 200) -> list[dict[str, Any]]:
    return [{"session": s.session, "title": s.title, "region": s.region, "device": s.device,
             "edge": s.pathway, "throughput_bps": s.throughput_bps, "requests": s.requests,
             "age_s": round(now_s - s.first_seen_s, 1), "last_seen_age_s": round(now_s - s.last_seen_s, 1)}
            for s in live[:limit]]


# -- handlers -------------------------------------------------------------------------------------

BOOK = web.AppKey("steering_pages_book", SessionBook)
#: Every vendor file's candidate paths, by served name (``VENDOR``).
VENDOR_CANDIDATES: web.AppKey[dict[str, tuple[Path, ...]]] = web.AppKey("steering_pages_vendor")


def _state(request: web.Request) -> SteeringState:
    return request.app[STATE]


def hlsjs_candidates(node_modules: str | os.PathLike[str] | None = None,
                     env: Mapping[str, str] | None = None, relative: Path = HLSJS_RELATIVE) -> tuple[Path, ...]:
    """Where ``hls.min.js`` (or another ``relative`` path) may be, in the order looked at (see the
    module docstring)."""
    env = os.environ if env is None else env
    folders: list[Path] = []
    if node_modules:
        folders.append(Path(node_modules))
    elif env.get(NODE_MODULES_ENV):
        folders.append(Path(env[NODE_MODULES_ENV]))
    else:
        folders.append(Path(__file__).resolve().parents[2] / "node_modules")
        folders.append(Path.cwd() / "node_modules")
    return tuple(dict.fromkeys(f / relative for f in folders))


def _first_file(paths: tuple[Path, ...]) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


async def status_page(request: web.Request) -> web.StreamResponse:
    return await _static(STATIC_DIR / "status.html")


async def status_json(request: web.Request) -> web.Response:
    state = _state(request)
    book = request.app[BOOK]
    now_s = state.clock()
    snapshot = state.registry.snapshot(now_s, reuse=False)
    live = book.live(now_s, live_window_s(state.config.steering_ttl_s))
    regions = [(r.name, r.origin_urls, r.preference) for r in state.inputs.regions]
    first_region = regions[0][0]
    recent = list(reversed(book.titles.items()))[:STATUS_TITLES]

    async def one_title(title: str, played_s: float) -> dict[str, Any]:
        try:
            doc = await state.catalog.title(title, first_region)
        except OriginUnavailable as e:
            return title_row(title, None, played_s, now_s, live, problem=f"no origin answered: {e}")
        except TitleFormatError as e:
            return title_row(title, None, played_s, now_s, live, problem=str(e))
        return title_row(title, doc, played_s, now_s, live, problem="" if doc else "title.json not found")

    titles = await asyncio.gather(*(one_title(t, s) for t, s in recent))
    doc = {
        "service": "steering", "public_url": state.public_url, "now_s": now_s,
        "live_window_s": live_window_s(state.config.steering_ttl_s),
        "steering_ttl_s": state.config.steering_ttl_s, "admin_enabled": bool(state.config.admin_key),
        "evacuated": sorted(snapshot.evacuated),
        "regions": region_rows(regions, snapshot, live),
        "edges": edge_rows(snapshot, state.registry.heartbeats, live),
        "titles": list(titles),
        "sessions_live": len(live),
        "sessions": session_rows(live, now_s),
        "devices": sorted(state.devices),
        "hlsjs": _first_file(request.app[VENDOR_CANDIDATES]["hls.min.js"]) is not None,
    }
    return web.json_response(doc, headers=NO_STORE, dumps=lambda d: json.dumps(d, separators=(",", ":")))


def watch_config(state: SteeringState, title: str, query: Mapping[str, str], hlsjs_present: bool) -> dict[str, Any]:
    """What the watch page's script starts from: the URL's choices, or the service's defaults."""
    regions = [r.name for r in state.inputs.regions]
    devices = sorted(state.devices)
    device = query.get("device") or (WATCH_DEFAULT_DEVICE if WATCH_DEFAULT_DEVICE in state.devices else devices[0])
    plays = state.devices.get(device, ("hls",))
    fmt = query.get("format", "")
    fmt = fmt if fmt in plays else plays[0]
    player = query.get("player", "auto")
    players = DASH_PLAYERS if fmt == "dash" else HLS_PLAYERS
    try:
        buffer_s = float(query.get("buffer_s", "0"))
    except ValueError:
        buffer_s = 0.0
    cmcd, sid = query.get("cmcd", ""), query.get("sid", "")[:CMCD_SID_MAX]
    return {"title": title, "device": device, "region": query.get("region") or regions[0],
            "session": query.get("session", ""), "audio": query.get("audio", ""), "subs": query.get("subs", ""),
            "format": fmt, "player": player if player in players else players[0],
            "buffer_s": buffer_s if 0 < buffer_s <= 600 else 0, "regions": regions, "devices": devices,
            "hlsjs_url": "/static/vendor/hls.min.js" if hlsjs_present else None,
            "dashjs_url": "/static/vendor/dash.all.min.js", "shaka_url": "/static/vendor/shaka-player.compiled.js",
            "cmcd": cmcd if cmcd in CMCD_MODES else "", "cmcd_sid": sid if sid.isprintable() else ""}


async def watch_page(request: web.Request) -> web.Response:
    title = request.match_info["title"]
    if not TITLE_NAME.match(title):
        return web.Response(status=404, text=f"no such title: {title!r}\n")
    present = await asyncio.to_thread(_first_file, request.app[VENDOR_CANDIDATES]["hls.min.js"])
    config = watch_config(_state(request), title, request.query, present is not None)
    template = await asyncio.to_thread((STATIC_DIR / "watch.html").read_text, "utf-8")
    # JSON inside <script>: no "</" can close the element early
    blob = json.dumps(config).replace("<", "\\u003c")
    html = template.replace("{{TITLE}}", _html_escape(title)).replace("{{CONFIG}}", blob)
    return web.Response(text=html, content_type="text/html", headers=NO_STORE)


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if "/" in name or name.startswith(".") or Path(name).suffix not in STATIC_TYPES:
        raise web.HTTPNotFound(text=f"no such file: {name}\n")
    return await _static(STATIC_DIR / name)


async def _static(path: Path) -> web.StreamResponse:
    try:
        body = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise web.HTTPNotFound(text=f"no such file: {path.name}\n") from None
    return web.Response(body=body, content_type=STATIC_TYPES.get(path.suffix, "application/octet-stream"),
                        charset="utf-8", headers={"Cache-Control": "no-cache"})


async def vendor_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in VENDOR:
        raise web.HTTPNotFound(text=f"no such file: {name}\n")
    candidates = request.app[VENDOR_CANDIDATES][name]
    found = await asyncio.to_thread(_first_file, candidates)
    if found is None:
        looked = ", ".join(str(p) for p in candidates)
        return web.Response(status=404, text=(
            f"{VENDOR[name][0]} is not installed: run `npm ci` (or `npm install`) at the repository root, "
            f"or point {NODE_MODULES_ENV} at a node_modules folder that has it. Looked for: {looked}\n"))
    return web.FileResponse(found, headers={"Cache-Control": "public, max-age=3600",
                                            "Content-Type": "text/javascript; charset=utf-8"})


_TRACKED_ROUTES = MappingProxyType({"/play/{title}": "play", "/m/{token}/{title}/master.m3u8": "master",
                                    "/m/{token}/{title}/manifest.mpd": "mpd",
                                    "/steer/{title}": "steer"})


@web.middleware
async def track_sessions(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Note player-facing requests in the session book (after the handler answered)."""
    response = await handler(request)
    resource = request.match_info.route.resource
    route = _TRACKED_ROUTES.get(resource.canonical if resource is not None else "")
    if route is not None:
        body = response.body if route == "play" and isinstance(response, web.Response) else None
        try:
            observe_request(request.app[BOOK], route=route, match_info=request.match_info, query=request.query,
                            status=response.status, body=body if isinstance(body, bytes) else None,
                            now_s=_state(request).clock())
        except Exception:  # noqa: BLE001 - bookkeeping must never break an answer
            log.exception("session bookkeeping failed")
    return response


def add_routes(app: web.Application, *, node_modules: str | os.PathLike[str] | None = None) -> None:
    """Serve the pages on ``app`` (a steering app from ``build_app``, before it starts)."""
    app[BOOK] = SessionBook()
    app[VENDOR_CANDIDATES] = {name: hlsjs_candidates(node_modules, relative=rel) for name, (_, rel) in VENDOR.items()}
    app.middlewares.append(track_sessions)
    app.router.add_get("/", status_page)
    app.router.add_get("/_/status", status_json)
    app.router.add_get("/watch/{title}", watch_page)
    app.router.add_get("/static/vendor/{name}", vendor_file)
    app.router.add_get("/static/{name}", static_file)
