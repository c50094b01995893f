"""The steering service's aiohttp app: routes, the rotation sweep, and ``serve`` (the state: ``state.py``).

Routes (player-facing ones in ``playback.py``):

    GET  /play/{title}                 playback API
    GET  /m/{token}/{title}/master.m3u8  steered multivariant playlist (HLS)
    GET  /m/{token}/{title}/manifest.mpd steered MPD (DASH)
    GET  /steer/{title}                content-steering manifest (HLS, or DASH with format=dash)
    POST /edges/heartbeat              edges report (JSON, see registry.py) -> {"in_rotation", "reason"}
    GET  /edges                        every edge: in rotation or why not, load, heartbeat age
    POST /regions/{region}/evacuate    admin (X-Admin-Key): no answer names the region's edges
    POST /regions/{region}/restore     admin: the region is back
    POST /keys/{kid}/activate          admin: sign new tokens with another known key (rotation)
    GET  /_/health                     {"status": "ok", ...}
    GET  /_/metrics                    Prometheus text (metrics.py)
    GET  /, /_/status, /watch/{title}  status and watch pages for people (pages.py)

Time: ``clock`` (monotonic seconds) drives heartbeats and rotation, ``wall_clock`` (POSIX
seconds) token expiry; both are injectable.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import AsyncIterator, Callable, Iterable, Mapping

from aiohttp import web

from serverkit.listen import open_listeners
from serverkit.run import run_on_loop, stop_on_signals

from . import pages, playback
from .config import SteeringConfig, SteeringInputs, device_formats
from .playback import json_error, json_response
from .registry import HeartbeatError, UnknownEdge
from .state import STATE, SteeringState

log = logging.getLogger(__name__)


def _admin_refusal(request: web.Request) -> web.Response | None:
    expected = request.app[STATE].config.admin_key
    given = request.headers.get("X-Admin-Key", "")
    if not expected:
        return json_error(403, "admin calls are disabled (no admin_key configured)")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return json_error(403, "missing or wrong X-Admin-Key")
    return None


async def heartbeat(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = await request.json()
    except ValueError:
        state.metrics.heartbeats.labels(outcome="refused").inc()
        return json_error(400, "heartbeat body is not JSON")
    now_s = state.clock()
    try:
        entry = state.registry.record_heartbeat(body, now_s)
    except UnknownEdge as e:
        state.metrics.heartbeats.labels(outcome="refused").inc()
        return json_error(404, str(e))
    except HeartbeatError as e:
        state.metrics.heartbeats.labels(outcome="refused").inc()
        return json_error(400, str(e))
    state.metrics.heartbeats.labels(outcome="ok").inc()
    view = next(v for v in state.registry.snapshot(now_s).edges if v.name == entry.name)
    return json_response({"name": entry.name, "in_rotation": view.in_rotation, "reason": view.reason})


async def edges(request: web.Request) -> web.Response:
    state = request.app[STATE]
    snapshot = state.registry.snapshot(state.clock(), reuse=False)
    return json_response({
        "evacuated": sorted(snapshot.evacuated),
        "edges": [{"name": v.name, "region": v.region, "url": v.entry.url, "in_rotation": v.in_rotation,
                   "reason": v.reason, "capacity_mbps": v.entry.capacity_mbps, "load_fraction": v.load_fraction,
                   "last_heartbeat_age_s": None if v.last_heartbeat_age_s is None
                   else round(v.last_heartbeat_age_s, 3)} for v in snapshot.edges]})


async def evacuate(request: web.Request) -> web.Response:
    return await _region_change(request, evacuate=True)


async def restore(request: web.Request) -> web.Response:
    return await _region_change(request, evacuate=False)


async def _region_change(request: web.Request, *, evacuate: bool) -> web.Response:
    refusal = _admin_refusal(request)
    if refusal is not None:
        return refusal
    state = request.app[STATE]
    region = request.match_info["region"]
    try:
        changed = state.registry.evacuate(region) if evacuate else state.registry.restore(region)
    except KeyError:
        return json_error(404, f"unknown region {region!r}", valid_regions=sorted(state.preference))
    state.metrics.evacuated.labels(region=region).set(1 if evacuate else 0)
    if evacuate and changed:
        state.metrics.evacuations.labels(region=region).inc()
    log.warning("region evacuated" if evacuate else "region restored",
                extra={"kv": {"region": region, "changed": changed}})
    state.sweep()
    return json_response({"region": region, "evacuated": evacuate, "changed": changed,
                          "evacuated_regions": sorted(state.registry.evacuated)})


async def activate_key(request: web.Request) -> web.Response:
    refusal = _admin_refusal(request)
    if refusal is not None:
        return refusal
    state = request.app[STATE]
    kid = request.match_info["kid"]
    if kid not in state.keys:
        return json_error(404, f"unknown key id {kid!r}", known=sorted(state.keys))
    state.active_key = kid
    log.warning("signing key changed", extra={"kv": {"kid": kid}})
    return json_response({"active_key": kid})


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    snapshot = state.registry.snapshot(state.clock())
    return json_response({"status": "ok", "service": "steering", "edges": len(snapshot.edges),
                          "edges_in_rotation": len(snapshot.in_rotation()),
                          "evacuated": sorted(snapshot.evacuated)})


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = state.metrics.render(state.registry.snapshot(state.clock(), reuse=False))
    return web.Response(body=body, headers={"Content-Type": state.metrics.content_type})


async def _sweeper(app: web.Application) -> AsyncIterator[None]:  # a cleanup context
    state = app[STATE]

    async def loop() -> None:
        while True:
            try:
                state.sweep()
            except Exception:  # noqa: BLE001 - the sweep only logs and counts; keep serving
                log.exception("rotation sweep failed")
            await asyncio.sleep(state.config.sweep_interval_s)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await state.catalog.close()


def build_app(config: SteeringConfig, inputs: SteeringInputs, *,
              devices: Mapping[str, tuple[str, ...]] | Iterable[str] | None = None,
              clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time,
              public_url: str = "") -> web.Application:
    """The app; ``public_url`` is how players reach it (``serve`` fills it once the port is known).
    ``devices``: device classes with the formats each plays (names alone: ``device_formats``)."""
    if devices is None or not isinstance(devices, Mapping):
        devices = device_formats(devices or config.devices)
    app = web.Application()
    app[STATE] = SteeringState(config=config, inputs=inputs, devices=dict(devices),
                               clock=clock, wall_clock=wall_clock,
                               public_url=(public_url or config.public_url).rstrip("/"))
    app.router.add_get("/play/{title}", playback.play)
    app.router.add_get("/m/{token}/{title}/master.m3u8", playback.master)
    app.router.add_get("/m/{token}/{title}/manifest.mpd", playback.mpd)
    app.router.add_get("/steer/{title}", playback.steer)
    app.router.add_post("/edges/heartbeat", heartbeat)
    app.router.add_get("/edges", edges)
    app.router.add_post("/regions/{region}/evacuate", evacuate)
    app.router.add_post("/regions/{region}/restore", restore)
    app.router.add_post("/keys/{kid}/activate", activate_key)
    app.router.add_get("/_/health", health)
    app.router.add_get("/_/metrics", metrics)
    app.cleanup_ctx.append(_sweeper)
    pages.add_routes(app)  # the watch and status pages (pages.py, issue 8)
    return app


async def serve(app: web.Application, *, stop: asyncio.Event | None = None) -> None:
    """Bind, fill ``public_url`` if unset, print ``steering listening on URL``, run until ``stop``
    (default: SIGTERM or SIGINT). Binding, signals and the loop are ``serverkit``'s."""
    state = app[STATE]
    cfg = state.config
    listeners = open_listeners(cfg.host, cfg.port, backlog=cfg.backlog, tls=cfg.tls, http_port=cfg.http_port)
    url = listeners.url
    if not state.public_url:
        state.public_url = url
    with stop_on_signals(stop) as stop_event:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        try:
            await runner.setup()
            await listeners.start(runner, backlog=cfg.backlog)
        except BaseException:
            listeners.close()
            await runner.cleanup()
            raise
        try:
            print(f"steering listening on {listeners.announce}", flush=True)
            log.info("steering listening", extra={"kv": {"url": url, "plain_url": listeners.plain_url,
                                                         "edges": len(state.registry.edges),
                                                         "regions": len(state.preference), "loop": cfg.loop}})
            await stop_event.wait()
            log.info("steering stopping")
        finally:
            await runner.cleanup()


def run_steering(app: web.Application) -> None:
    """Blocking: serve ``app`` on the event loop its config names until SIGTERM/SIGINT."""
    run_on_loop(lambda: serve(app), app[STATE].config.loop)
