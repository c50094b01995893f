"""Checks before any load starts: every problem here is one `LoadError` line and no session runs.

With stream URLs (``--url``, no steering service) it checks only that each URL is http(s), on
loopback unless ``allow_remote``, and answers an HLS playlist or a DASH MPD, the trace folders,
and that no chaos or regions are asked for. With a steering service, `preflight(cfg, http)` checks, in order: the steering URL (loopback unless ``allow_remote``),
that it answers ``/_/health``, its edges (``/edges``: at least one in rotation), the regions mix
against the regions those edges live in, trace folders (``trace:DIR`` must hold readable traces),
every title through ``/play/{title}`` (an unknown title is refused there), and the chaos schedule
(control endpoint found and knowing the servers, admin key, regions; unsupported actions refused;
kill, restart, origin-slow and origin-fast need the control endpoint).
It returns what the run needs: the edges, the regions mix, the trace files and the control URL.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from client.dash import looks_like_mpd
from client.devices import load_devices
from client.traces import TraceError, load_trace

from .chaos import CONTROL_ACTIONS, check_chaos, find_control_url
from .config import LoadConfig
from .edges import EdgeInfo, fetch_edges, is_loopback_url
from .errors import LoadError
from .specs import MixEntry

__all__ = ["Preflight", "preflight", "trace_files"]

TITLE_CHECK_CONCURRENCY = 8
#: The region of sessions that play a stream URL (no steering service places them).
STREAM_REGION = "-"
TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True)
class Preflight:
    edges: tuple[EdgeInfo, ...]
    regions: tuple[MixEntry, ...]
    trace_files: dict[str, tuple[str, ...]]
    control_url: str | None
    servers: tuple[str, ...]


def trace_files(networks: tuple[MixEntry, ...]) -> dict[str, tuple[str, ...]]:
    """``trace:PATH`` entries -> the trace files (a file, or every trace file of a folder), each checked."""
    out: dict[str, tuple[str, ...]] = {}
    for e in networks:
        if not e.name.startswith("trace:"):
            continue
        path = Path(e.name[len("trace:"):]).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                           and not p.name.upper().startswith("README"))
        elif path.is_file():
            files = [path]
        else:
            raise LoadError(f"networks: {e.name}: no such file or folder")
        if not files:
            raise LoadError(f"networks: {e.name}: the folder holds no trace files")
        for f in files:
            try:
                load_trace(f)
            except TraceError as err:
                raise LoadError(f"networks: {err}") from None
        out[e.name] = tuple(str(f.resolve()) for f in files)
    return out


async def _get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url, timeout=TIMEOUT) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, None


async def _check_title(http: aiohttp.ClientSession, steering: str, title: str, device: str, region: str,
                       sem: asyncio.Semaphore, format: str | None = None) -> None:
    args = {"device": device, "region": region, "session": "load-preflight"}
    query = urlencode({**args, "format": format} if format else args)
    async with sem:
        try:
            status, doc = await _get_json(http, f"{steering}/play/{quote(title, safe='')}?{query}")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise LoadError(f"steering service at {steering} failed while checking title {title!r}: "
                            f"{type(e).__name__}") from None
    if status == 200:
        return
    why = doc.get("error") if isinstance(doc, dict) else None
    if status == 404:
        what = f"no {format.upper()} manifest for title" if format else "unknown title"
        raise LoadError(f"{what} {title!r} (steering at {steering}: {why or 'HTTP 404'})")
    extra = ""
    if isinstance(doc, dict):
        for key in ("valid_devices", "valid_regions"):
            if doc.get(key):
                extra = f" ({key.replace('_', ' ')}: {', '.join(map(str, doc[key]))})"
    raise LoadError(f"steering refused title {title!r} for device {device!r} in {region!r}: "
                    f"HTTP {status} {why or ''}{extra}".rstrip())


async def _control_servers(http: aiohttp.ClientSession, control_url: str, admin_key: str | None) -> tuple[str, ...]:
    headers = {"X-Admin-Key": admin_key} if admin_key else {}
    try:
        async with http.get(f"{control_url}/_/control/status", headers=headers, timeout=TIMEOUT) as resp:
            if resp.status == 403:
                raise LoadError(f"the control endpoint {control_url} refused the admin key (give --admin-key)")
            if resp.status != 200:
                raise LoadError(f"the control endpoint {control_url} answered HTTP {resp.status}")
            doc = await resp.json(content_type=None)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:
        raise LoadError(f"the control endpoint {control_url} does not answer: {type(e).__name__}") from None
    return tuple(str(s["name"]) for s in doc.get("servers", []))


async def _check_stream(http: aiohttp.ClientSession, url: str, sem: asyncio.Semaphore) -> None:
    """A stream URL answers 200 with an HLS playlist or a DASH MPD (the first bytes are enough)."""
    async with sem:
        try:
            async with http.get(url, timeout=TIMEOUT) as resp:
                head = await resp.content.read(4096)
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise LoadError(f"--url {url}: unreachable: {type(e).__name__}{': ' + str(e) if str(e) else ''}") from None
    if status != 200:
        raise LoadError(f"--url {url}: HTTP {status}")
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if not (text.startswith("#EXTM3U") or looks_like_mpd(text)):
        raise LoadError(f"--url {url}: neither an HLS playlist (#EXTM3U) nor a DASH MPD")


async def _preflight_streams(cfg: LoadConfig, http: aiohttp.ClientSession) -> Preflight:
    """``--url``: every URL checked once; no steering, edges or chaos (those need a vodstack stack)."""
    for url in cfg.titles:
        if not url.startswith(("http://", "https://")):
            raise LoadError(f"--url must be http(s) URLs, got {url!r}")
        if not cfg.allow_remote and not is_loopback_url(url):
            raise LoadError(f"--url {url} is not on loopback; the load tester only targets this machine "
                            "unless --allow-remote is given")
    if cfg.chaos:
        raise LoadError("--chaos needs a vodstack stack (--steering): with --url there is nothing to apply it to")
    if cfg.regions is not None:
        raise LoadError("--regions needs a steering service (--steering): a stream URL has no regions")
    traces = trace_files(cfg.networks)
    sem = asyncio.Semaphore(TITLE_CHECK_CONCURRENCY)
    checks = [asyncio.create_task(_check_stream(http, u, sem)) for u in dict.fromkeys(cfg.titles)]
    try:
        await asyncio.gather(*checks)
    finally:
        for c in checks:
            c.cancel()
    return Preflight(edges=(), regions=(MixEntry(STREAM_REGION, 1.0),), trace_files=traces, control_url=None,
                     servers=())


async def preflight(cfg: LoadConfig, http: aiohttp.ClientSession) -> Preflight:
    if cfg.steering_url is None:
        return await _preflight_streams(cfg, http)
    steering = cfg.steering_url.rstrip("/")
    if not steering.startswith(("http://", "https://")):
        raise LoadError(f"--steering must be an http:// URL, got {cfg.steering_url!r}")
    if not cfg.allow_remote and not is_loopback_url(steering):
        raise LoadError(f"--steering {steering} is not on loopback; the load tester only targets this machine "
                        "unless --allow-remote is given")
    try:
        status, doc = await _get_json(http, f"{steering}/_/health")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
        raise LoadError(f"steering service unreachable at {steering}: {type(e).__name__}"
                        f"{': ' + str(e) if str(e) else ''}") from None
    if status != 200 or not isinstance(doc, dict) or doc.get("service") not in (None, "steering"):
        raise LoadError(f"{steering} does not look like a steering service (/_/health answered HTTP {status})")
    try:
        edges = tuple(await fetch_edges(http, steering))
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError, KeyError, TypeError) as e:
        raise LoadError(f"steering service at {steering} gave no edge list: {type(e).__name__}: {e}") from None
    if not any(e.in_rotation for e in edges):
        raise LoadError(f"steering service at {steering} has no edge in rotation")
    if not cfg.allow_remote:
        remote = [e.name for e in edges if not is_loopback_url(e.url)]
        if remote:
            raise LoadError(f"edges off loopback ({', '.join(remote)}); give --allow-remote to target them")
    known_regions = sorted({e.region for e in edges})
    if cfg.regions is None:
        regions = tuple(MixEntry(r, 1.0 / len(known_regions)) for r in known_regions)
    else:
        regions = cfg.regions
        unknown = [e.name for e in regions if e.name not in known_regions]
        if unknown:
            raise LoadError(f"regions: unknown {', '.join(map(repr, unknown))} "
                            f"(the steering service has edges in: {', '.join(known_regions)})")
    traces = trace_files(cfg.networks)
    sem = asyncio.Semaphore(TITLE_CHECK_CONCURRENCY)
    device, region = cfg.devices[0].name, regions[0].name
    # every title once, and once more per format the mix asks for by name, as a device of the mix
    # that plays it (a title without an MPD is refused there, before any load starts)
    profiles = load_devices(cfg.devices_file)
    asked: list[tuple[str | None, str]] = [(None, device)]
    for f in sorted({e.name for e in cfg.formats} - {"device"}):
        player = next((e.name for e in cfg.devices if f in profiles[e.name].formats), None)
        if player is not None:
            asked.append((f, player))
    checks = [asyncio.create_task(_check_title(http, steering, t, d, region, sem, f))
              for t in dict.fromkeys(cfg.titles) for f, d in asked]
    try:
        await asyncio.gather(*checks)
    finally:
        for c in checks:
            c.cancel()
    control_url = cfg.control_url.rstrip("/") if cfg.control_url else None
    servers: tuple[str, ...] = ()
    if any(ev.action in CONTROL_ACTIONS for ev in cfg.chaos):
        hint = f" (no {cfg.data_dir / 'run' / 'up.json'} found)"
        control_url = control_url or find_control_url(cfg.data_dir)
        if control_url and not cfg.allow_remote and not is_loopback_url(control_url):
            raise LoadError(f"--control {control_url} is not on loopback; give --allow-remote")
        if control_url:
            servers = await _control_servers(http, control_url, cfg.admin_key)
        check_chaos(cfg.chaos, control_url=control_url, servers=set(servers), regions=set(known_regions),
                    admin_key=cfg.admin_key, control_hint=hint)
    else:
        check_chaos(cfg.chaos, control_url=control_url, servers=None, regions=set(known_regions),
                    admin_key=cfg.admin_key)
    return Preflight(edges=edges, regions=regions, trace_files=traces, control_url=control_url, servers=servers)
