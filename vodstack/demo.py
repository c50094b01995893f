"""`vodstack demo`: the whole stack on the embedded default, end to end, in one go.

1. **Title.** Find ``{data_dir}/storage/demo/title.json``, or make it: a lavfi source (`sample.DEMO`: a test
   pattern with English 5.1 and French stereo audio) plus English and French subtitles, ingested
   with the default ladder (H.264 rungs, HEVC and AV1 at the top, AAC stereo and E-AC-3 5.1).
2. **Stack.** `vodstack/topologies/demo.toml`: 3 regions x (origin + 2 edges) + steering on free
   loopback ports, each server its own process (`supervisor.Stack`).
3. **Sessions.** Four viewers at once through the steering service, each with its device,
   network, region and language choices, on a media clock running ``speed`` times real time.
4. **Chaos.** Mid-session, the edge serving the 4K TV is killed (SIGKILL) and a whole region is
   evacuated; the players fail over and follow content steering. A new playback request for the
   evacuated region is checked to name no edge of it.
5. **Results.** A table per session; a JSON report and a PNG plot per session under
   ``{data_dir}/demo-reports/``. Any failed session (or a chaos step that had no effect) makes
   the demo fail.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import aiohttp

from manifests import ENTRY_POINTS

from .sample import DEMO, make_sample_source
from .supervisor import Stack
from .topology import Topology, load_topology

log = logging.getLogger(__name__)

DEMO_TOPOLOGY = Path(__file__).with_name("topologies") / "demo.toml"
TITLE = "demo"
SEGMENT_S = 2.0


@dataclass(frozen=True)
class Viewer:
    device: str
    network: str
    region: str
    audio: tuple[str, ...]
    subs: str | None
    format: str = "hls"  #: the manifest asked of /play: the Android phone plays the DASH MPD


VIEWERS = (
    Viewer("iphone", "3g", "us-east-1", ("en",), "off"),
    Viewer("tv-4k", "fiber", "eu-west-1", ("en",), "fr"),
    Viewer("laptop-chrome", "wifi", "us-west-2", ("fr",), "en"),
    Viewer("android-phone", "4g", "us-east-1", ("fr",), None, format="dash"),
)


@dataclass
class DemoResult:
    reports: list[Any] = field(default_factory=list)   # client.report.SessionReport, one per viewer
    viewers: tuple[Viewer, ...] = VIEWERS
    events: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    report_dir: Path | None = None
    wall_s: float = 0.0
    joined: dict[str, Any] | None = None  #: the sessions joined with the edges' access logs (CMCD sid)

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.reports)


def ensure_title(data_dir: Path, say: Callable[[str], None], events: Any = None) -> Path:
    """The demo title in ``{data_dir}/storage``: found, or made and ingested (a minute or two)."""
    storage = data_dir / "storage"
    if all((storage / TITLE / name).exists() for name in ENTRY_POINTS):
        say(f"title: found {storage / TITLE} (delete it to ingest again)")
        return storage
    from origin.transcode.pipeline import IngestConfig, ingest
    from origin.transcode.subtitles import parse_spec

    say("title: making a 30 s source (test pattern, en 5.1 + fr stereo audio, en/fr subtitles)")
    source, subs = make_sample_source(data_dir / "sources", DEMO)
    say("title: ingesting with the default ladder (H.264 rungs, HEVC and AV1 on top); this takes a minute or two")
    started = time.monotonic()
    result = ingest(IngestConfig(
        source=str(source), title=TITLE, out=str(storage), segment_duration_s=SEGMENT_S,
        chunk_duration_s=10.0, vmaf_subsample=10,
        subs=tuple(parse_spec(f"{lang}={path}") for lang, path in subs.items())), events)
    t = result.title
    say(f"title: ingested {len(t.video)} video, {len(t.audio)} audio, {len(t.subtitles)} subtitle tracks "
        f"in {time.monotonic() - started:.0f} s")
    return storage


def demo_topology(data_dir: Path) -> Topology:
    """The demo topology with its data (storage, caches, run files) under ``data_dir``."""
    return load_topology(DEMO_TOPOLOGY, data_dir=data_dir.absolute())


async def run_demo(data_dir: Path, *, speed: float = 2.0, say: Callable[[str], None] = print,
                   sink: Callable[[str, str], None] | None = None) -> DemoResult:
    """Everything after the title exists: the stack, the sessions, the chaos, the reports."""
    from client.abr.config import AbrConfig
    from client.devices import get_device
    from client.edgelogs import collect, note_offsets
    from client.joined import from_report
    from client.network import parse_network
    from client.context import SessionConfig
    from client.session import PlayerSession
    from client.tracks import TrackPreferences

    result = DemoResult()
    started = time.monotonic()
    topo = demo_topology(data_dir)
    say("stack: starting 3 origins, the steering service and 6 edges (3 regions)")
    async with Stack(topo, sink=sink, control=False) as stack:
        steering = stack.url_of("steering")
        say(f"stack: ready; steering at {steering}")
        logs = [str(data_dir / "logs" / "*.access.log")]  # where the stack's edges append their access logs
        offsets = note_offsets(logs)
        for region in topo.regions:
            edges = ", ".join(f"{e.name} {stack.url_of(e.name)}" for e in region.edges)
            say(f"  {region.name}: {region.origin.name} {stack.url_of(region.origin.name)}; {edges}")
        config = SessionConfig(max_buffer_s=10.0)
        async with aiohttp.ClientSession() as http:
            sessions = []
            for v in VIEWERS:
                device = get_device(v.device)
                sessions.append(PlayerSession(
                    http, device=device, steering_url=steering, title=TITLE, region=v.region,
                    network=parse_network(v.network), network_name=v.network, speed=speed,
                    prefs=TrackPreferences(audio_languages=v.audio, subtitle_language=v.subs),
                    config=replace(config, format=v.format), abr_config=AbrConfig()))
            say(f"play: {len(sessions)} sessions at {speed:g}x media speed, 10 s buffer goal")
            tasks = [asyncio.create_task(s.run()) for s in sessions]
            chaos = asyncio.create_task(_chaos(stack, topo, sessions, http, steering, result, say))
            result.reports = list(await asyncio.gather(*tasks))
            await chaos
        # what the edges logged of each session (CMCD sid), while they still run to flush their last lines
        result.joined = await collect(logs, offsets, [from_report(r) for r in result.reports])
        if result.joined is not None:
            (data_dir / "demo-reports").mkdir(parents=True, exist_ok=True)
            (data_dir / "demo-reports" / "joined.json").write_text(json.dumps(result.joined, indent=1, default=str))
        result.report_dir = _write_reports(data_dir, result)
    result.wall_s = time.monotonic() - started
    return result


async def _chaos(stack: Stack, topo: Topology, sessions: list[Any], http: aiohttp.ClientSession,
                 steering: str, result: DemoResult, say: Callable[[str], None]) -> None:
    """Kill the edge serving the TV once it has >= 4 s buffered; then evacuate us-west-2."""
    tv = sessions[1]
    edge_names = {e.name for e in topo.edges}
    victim = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = tv.status()
        if st["state"] == "playing" and st["buffer_s"] >= 4.0 and st["position_s"] >= 4.0:
            victim = st["pathway"]
            break
        await asyncio.sleep(0.1)
    if victim not in edge_names:
        result.problems.append(f"chaos: the TV session never reached 4 s of buffer on an edge ({tv.status()})")
        return
    await stack.kill(victim)
    msg = f"chaos: killed {victim} (serving the 4K TV, {tv.status()['buffer_s']:.1f} s buffered)"
    result.events.append(msg)
    say(msg)

    laptop = sessions[2]
    await asyncio.sleep(1.0)
    region = "us-west-2"
    key = topo.steering.admin_key
    async with http.post(f"{steering}/regions/{region}/evacuate", headers={"X-Admin-Key": key}) as resp:
        if resp.status != 200:
            result.problems.append(f"chaos: evacuate {region} answered {resp.status}")
            return
    msg = f"chaos: evacuated {region} (the laptop was on {laptop.status()['pathway']})"
    result.events.append(msg)
    say(msg)
    async with http.get(f"{steering}/play/{TITLE}", params={"device": "laptop-chrome", "region": region,
                                                              "session": "demo-check"}) as resp:
        answer = await resp.json()
    named = json.dumps(answer.get("pathways", answer))
    bad = [e.name for e in topo.region(region).edges if e.name in named]
    if bad:
        result.problems.append(f"evacuation: a new playback answer for {region} still names {', '.join(bad)}")
    else:
        first = (answer.get("pathways") or [{}])[0]
        first_name = first.get("name") or first.get("pathway") or first.get("id") if isinstance(first, dict) else first
        msg = f"evacuation: new playback answers for {region} name none of its edges (first: {first_name})"
        result.events.append(msg)
        say(msg)


def _write_reports(data_dir: Path, result: DemoResult) -> Path:
    out = data_dir / "demo-reports"
    out.mkdir(parents=True, exist_ok=True)
    for v, r in zip(result.viewers, result.reports):
        stem = f"{v.device}-{v.network}-{v.region}"
        r.write_json(out / f"{stem}.json")
        try:
            r.plot(out / f"{stem}.png")
        except Exception as e:  # noqa: BLE001 - a plot is a nicety; the JSON is the record
            log.warning("plot failed", extra={"kv": {"session": stem, "error": e}})
    (out / "events.json").write_text(json.dumps({"events": result.events, "problems": result.problems}, indent=1))
    return out


def session_rows(result: DemoResult) -> list[dict[str, Any]]:
    """One row per session for the table (and for ``--json``)."""
    rows = []
    joined = result.joined or {}
    hits = (joined.get("hit_ratio") or {}).get("by_device") or {}
    causes = ((joined.get("stalls") or {}).get("by_device")) or {}
    for v, r in zip(result.viewers, result.reports):
        tracks = r.tracks or {}
        ladder = tracks.get("ladder") or []
        top = max((s.rung for s in r.segments), default=None)
        top_rung = ladder[top] if top is not None and top < len(ladder) else {}
        audio = tracks.get("audio") or {}
        subs = tracks.get("subtitles") or {}
        pathways: list[str] = []
        for s in r.segments:
            if not pathways or pathways[-1] != s.pathway:
                pathways.append(s.pathway)
        rows.append({
            "device": v.device, "network": v.network, "region": v.region, "format": v.format, "ok": r.ok,
            "error": r.error,
            "top_codec": top_rung.get("codec"), "top_resolution": top_rung.get("resolution"),
            "audio": f"{audio.get('language')} {audio.get('channels') or ''}ch".strip() if audio else None,
            "subtitles": (f"{subs.get('language')}{' forced' if subs.get('forced') else ''}" if subs else "off"),
            "startup_s": r.startup_s, "stalls": r.stall_count, "stall_s": r.stall_s,
            "avg_bitrate_kbps": round(r.avg_bitrate_bps / 1000), "failovers": len(r.failovers),
            "edges": pathways,
            # the edges' side (their access logs, joined by CMCD session id): cache hits and stall causes
            "edge_hit_ratio": hits[v.device]["request_hit_ratio"] if v.device in hits else None,
            "stall_causes": {c: t["seconds"] for c, t in (causes.get(v.device) or {}).items() if t["count"]},
        })
    return rows
