"""Helpers of the steering tests (a module of its own so no other folder's conftest shadows it).

    STORED_MASTER       a stored multivariant playlist (2 video x 2 audio x 2 subtitles + I-frames)
    make_tiny_title     a 4-second title made by ffmpeg (real CMAF segments), published like ingest
    Server              one `vodstack ...` process in its own process group, logs in files
    steering_topology   a topology text over real origins and edges nobody runs (tests post heartbeats)
    topology_text       a topology text `vodstack up` runs whole (origins, edges, steering)
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.procs import LISTENING, Server  # noqa: F401 - re-exported

STORED_MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",LANGUAGE="en",NAME="English",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/en/index.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",LANGUAGE="fr",NAME="Francais",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="audio/fr/index.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="subs/en/index.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="Francais",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="subs/fr/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=300000,AVERAGE-BANDWIDTH=250000,CODECS="avc1.64000c,mp4a.40.2",RESOLUTION=160x90,FRAME-RATE=10.000,AUDIO="aac",SUBTITLES="subs"
video/v90/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=600000,AVERAGE-BANDWIDTH=500000,CODECS="avc1.64000d,mp4a.40.2",RESOLUTION=320x180,FRAME-RATE=10.000,AUDIO="aac",SUBTITLES="subs"
video/v180/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=50000,CODECS="avc1.64000c",RESOLUTION=160x90,URI="iframes/v90.m3u8"
"""


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=120)


def _hls(out: Path, inputs: list[str], codec_args: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _ffmpeg(*inputs, *codec_args, "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
            "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
            "-hls_segment_filename", str(out / "%05d.m4s"), str(out / "index.m3u8"))


def make_tiny_title(root: Path, title: str = "tiny") -> Path:
    """A 4-second title with real CMAF segments, published like ingest does (master last)."""
    base = root / title
    for name, size in (("v90", "160x90"), ("v180", "320x180")):
        _hls(base / "video" / name, ["-f", "lavfi", "-i", f"testsrc=size={size}:rate=10:duration=4"],
             ["-c:v", "libx264", "-preset", "ultrafast", "-g", "20", "-keyint_min", "20",
              "-sc_threshold", "0", "-pix_fmt", "yuv420p"])
    for lang, freq in (("en", 440), ("fr", 660)):
        _hls(base / "audio" / lang, ["-f", "lavfi", "-i", f"sine=frequency={freq}:duration=4"],
             ["-c:a", "aac", "-b:a", "64k", "-ac", "2"])
    for lang in ("en", "fr"):
        subs = base / "subs" / lang
        subs.mkdir(parents=True, exist_ok=True)
        (subs / "00000.vtt").write_text(f"WEBVTT\n\n00:00.000 --> 00:02.000\n{lang} line one\n")
        (subs / "00001.vtt").write_text(f"WEBVTT\n\n00:02.000 --> 00:04.000\n{lang} line two\n")
        (subs / "index.m3u8").write_text(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n"
            "#EXTINF:2.000,\n00000.vtt\n#EXTINF:2.000,\n00001.vtt\n#EXT-X-ENDLIST\n")
    iframes = base / "iframes"
    iframes.mkdir(parents=True, exist_ok=True)
    (iframes / "v90.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-I-FRAMES-ONLY\n"
        '#EXT-X-MAP:URI="../video/v90/init.mp4"\n#EXTINF:2.000,\n../video/v90/00000.m4s\n#EXT-X-ENDLIST\n')
    doc = {"format": "vodstack-title/1", "title": title, "duration_s": 4.0, "segment_duration_s": 2.0,
           "video": [{"id": "v90", "codec": "avc1.64000c", "width": 160, "height": 90, "frame_rate": 10,
                      "bandwidth_bps": 300000, "average_bandwidth_bps": 250000, "devices": [],
                      "playlist": "video/v90/index.m3u8"},
                     {"id": "v180", "codec": "avc1.64000d", "width": 320, "height": 180, "frame_rate": 10,
                      "bandwidth_bps": 600000, "average_bandwidth_bps": 500000, "devices": [],
                      "playlist": "video/v180/index.m3u8"}],
           "audio": [{"id": lang, "codec": "mp4a.40.2", "language": lang, "name": lang, "channels": 2,
                      "group": "aac", "default": lang == "en", "playlist": f"audio/{lang}/index.m3u8"}
                     for lang in ("en", "fr")],
           "subtitles": [{"id": lang, "language": lang, "name": lang, "forced": False, "sdh": False,
                          "playlist": f"subs/{lang}/index.m3u8"} for lang in ("en", "fr")],
           "iframes": [{"id": "v90", "playlist": "iframes/v90.m3u8"}]}
    (base / "title.json").write_text(json.dumps(doc, indent=1))
    (base / "master.m3u8").write_text(STORED_MASTER)
    return root




REGIONS = {"us-east-1": ["us-west-2", "eu-west-1"], "us-west-2": ["us-east-1", "eu-west-1"],
           "eu-west-1": ["us-east-1", "us-west-2"]}


def steering_topology(origin_urls: dict[str, str], *, edges_per_region: int = 2,
                      heartbeat_timeout_s: float = 2.0, ttl_s: int = 2, first_edge_port: int = 41001) -> str:
    """A topology TOML text: 3 regions on real origins; edges at ports nothing listens on
    (the tests play the edges by posting their heartbeats)."""
    text = ('[stack]\nheartbeat_interval_s = 0.2\ncontrol_port = 0\n'
            '[keys]\nactive = "k1"\n[keys.secrets]\nk1 = "s1"\nk0 = "s0"\n'
            f'[steering]\nport = 0\nadmin_key = "adm"\nheartbeat_timeout_s = {heartbeat_timeout_s}\n'
            f'steering_ttl_s = {ttl_s}\nsweep_interval_s = 0.1\n')
    n = first_edge_port
    for region, pref in REGIONS.items():
        port = int(origin_urls[region].rsplit(":", 1)[1])
        text += (f'[regions.{region}]\npreference = ["{pref[0]}", "{pref[1]}"]\n'
                 f'origin = {{ name = "origin-{region}", port = {port} }}\n')
        for i in range(edges_per_region):
            text += f'[[regions.{region}.edges]]\nname = "edge-{region}{chr(97 + i)}"\nport = {n}\n'
            n += 1
    return text


def topology_text(data_dir: Path, storage: Path, *, max_pathways: int = 8, edge_args: str = "[]",
                  stack_extra: str = "") -> str:
    """A topology TOML text `vodstack up` runs: 3 regions of 2 peered edges, every port free
    (``stack_extra``: more ``[stack]`` lines, e.g. the TLS files)."""
    text = (f'[stack]\ndata_dir = "{data_dir}"\nstorage = "{storage}"\ncontrol_port = 0\n'
            f'heartbeat_interval_s = 0.5\nready_timeout_s = 60\n{stack_extra}'
            '[keys]\nactive = "k1"\n[keys.secrets]\nk1 = "s1"\nk0 = "s0"\n'
            f'[steering]\nport = 0\nadmin_key = "adm"\nheartbeat_timeout_s = 3.0\nsteering_ttl_s = 2\n'
            f'max_pathways = {max_pathways}\n')
    regions = {"us-east-1": ["us-west-2", "eu-west-1"], "us-west-2": ["us-east-1", "eu-west-1"],
               "eu-west-1": ["us-east-1", "us-west-2"]}
    for region, pref in regions.items():
        text += (f'[regions.{region}]\npreference = ["{pref[0]}", "{pref[1]}"]\n'
                 f'origin = {{ name = "origin-{region}", port = 0 }}\n')
        for c in "ab":
            other = "b" if c == "a" else "a"
            text += (f'[[regions.{region}.edges]]\nname = "edge-{region}{c}"\nport = 0\nram_mb = 16\n'
                     f'disk_mb = 64\npeers = ["edge-{region}{other}"]\nargs = {edge_args}\n')
    return text


async def run_vodstack(*args: str, timeout_s: float = 180) -> tuple[int, str, str]:
    """``python -m vodstack --log-level warning ARGS``: its exit code, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "vodstack", "--log-level", "warning", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def play_doc_with_pathways(http: aiohttp.ClientSession, steering: str, count: int, *, session: str,
                                 timeout_s: float = 30.0) -> dict:
    """``/play/tiny`` (a laptop in eu-west-1) once ``count`` edges are in rotation (they heartbeat first)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        async with http.get(f"{steering}/play/tiny?device=laptop-chrome&region=eu-west-1&session={session}") as r:
            doc = await r.json()
        if r.status == 200 and len(doc["pathways"]) == count:
            return doc
        assert time.monotonic() < deadline, doc
        await asyncio.sleep(0.2)
