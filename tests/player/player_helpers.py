"""Helpers of the player tests (a module with its own name, so no other folder's conftest shadows it).

    build_title     a synthetic title published like ingest does (title.json, playlists written by
                    ``manifests``, master last) with the default ladder's shape: H.264 rungs for
                    everyone, HEVC/AV1 at the top, low/high AAC groups and a 5.1 E-AC-3 group,
                    subtitles with forced and SDH tracks. Segments are sparse files of the right
                    size (the player counts bytes; it never decodes).
    Server          one ``vodstack ...`` process (own process group, logs in files, URL from the
                    "listening on" line).
    free_port       a port nothing listens on.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from manifests.hls import render_title_playlists
from manifests.title import (AudioTrack, InitSegment, Segment, SubtitleTrack, Title, VideoRendition, dumps_title,
                             measured_bandwidth)
from tests.procs import LISTENING, Server, free_port  # noqa: F401 - re-exported

REPO = Path(__file__).resolve().parents[2]

# id, codec, family, width, height, kbps, audio groups (the ingest's pairing rules)
LADDER = [
    ("h264-234p", "avc1.64000d", "h264", 416, 234, 145, ("aac-64k",)),
    ("h264-270p", "avc1.640015", "h264", 480, 270, 365, ("aac-64k",)),
    ("h264-360p", "avc1.64001e", "h264", 640, 360, 730, ("aac-64k",)),
    ("h264-432p", "avc1.64001e", "h264", 768, 432, 1100, ("aac-128k",)),
    ("h264-540p", "avc1.64001f", "h264", 960, 540, 2000, ("aac-128k", "ec3-448k")),
    ("h264-720p", "avc1.64001f", "h264", 1280, 720, 3000, ("aac-128k", "ec3-448k")),
    ("h264-1080p", "avc1.640028", "h264", 1920, 1080, 6000, ("aac-128k", "ec3-448k")),
    ("hevc-1080p", "hvc1.1.6.L120.90", "hevc", 1920, 1080, 4500, ("aac-128k", "ec3-448k")),
    ("hevc-2160p", "hvc1.1.6.L150.90", "hevc", 3840, 2160, 11600, ("aac-128k", "ec3-448k")),
    ("av1-1080p", "av01.0.08M.08", "av1", 1920, 1080, 3400, ("aac-128k", "ec3-448k")),
    ("av1-2160p", "av01.0.12M.08", "av1", 3840, 2160, 9000, ("aac-128k", "ec3-448k")),
]
AUDIO = [("aac-64k", "mp4a.40.2", 2, 64), ("aac-128k", "mp4a.40.2", 2, 128), ("ec3-448k", "ec-3", 6, 448)]
SUBS = [("en", "English", False, False), ("en-sdh", "English SDH", False, True),
        ("en-forced", "English (forced)", True, False), ("fr", "Français", False, False),
        ("fr-forced", "Français (forcés)", True, False)]


def _sparse(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)


def build_title(root: Path, title: str = "demo", *, duration_s: float = 60.0, segment_s: float = 4.0,
                languages: tuple[str, ...] = ("en", "fr"), ladder=LADDER, seed: int = 1) -> Title:
    """Write a synthetic title under ``root/title`` and return its model."""
    rng = random.Random(seed)
    n = int(round(duration_s / segment_s))
    durations = [segment_s] * n
    base = root / title
    video = []
    for rid, codec, family, w, h, kbps, groups in ladder:
        segs = []
        for k, d in enumerate(durations):
            size = int(kbps * 1000 * d / 8 * rng.uniform(0.8, 1.2))
            path = f"video/{rid}/{k + 1:05d}.m4s"
            _sparse(base / path, size)
            segs.append(Segment(path=path, duration_s=d, size_bytes=size))
        _sparse(base / f"video/{rid}/init.mp4", 900)
        peak, avg = measured_bandwidth(segs)
        video.append(VideoRendition(
            id=rid, codec=codec, codec_family=family, width=w, height=h, frame_rate=30.0, bandwidth_bps=peak,
            average_bandwidth_bps=avg, nominal_bitrate_kbps=kbps, playlist=f"video/{rid}/index.m3u8",
            init=InitSegment(path=f"video/{rid}/init.mp4", size_bytes=900), segments=tuple(segs),
            audio_groups=groups))
    audio = []
    names = {"en": "English", "fr": "Français", "de": "Deutsch"}
    for group, codec, channels, kbps in AUDIO:
        for lang in languages:
            tid = f"{group}-{lang}"
            segs = []
            for k, d in enumerate(durations):
                path = f"audio/{tid}/{k + 1:05d}.m4s"
                size = int(kbps * 1000 * d / 8)
                _sparse(base / path, size)
                segs.append(Segment(path=path, duration_s=d, size_bytes=size))
            _sparse(base / f"audio/{tid}/init.mp4", 700)
            peak, avg = measured_bandwidth(segs)
            label = names.get(lang, lang) + (" 5.1" if channels == 6 else "")
            audio.append(AudioTrack(
                id=tid, codec=codec, language=lang, name=label, channels=channels, bitrate_kbps=kbps, group=group,
                default=lang == languages[0], bandwidth_bps=peak, average_bandwidth_bps=avg,
                playlist=f"audio/{tid}/index.m3u8", init=InitSegment(path=f"audio/{tid}/init.mp4", size_bytes=700),
                segments=tuple(segs)))
    subtitles = []
    for sid, name, forced, sdh in SUBS:
        lang = sid.split("-")[0]
        if lang not in languages:
            continue
        segs = []
        for k, d in enumerate(durations):
            path = f"subs/{sid}/{k + 1:05d}.vtt"
            text = f"WEBVTT\n\n{_ts(k * d)} --> {_ts(k * d + d / 2)}\n{name} line {k + 1}\n"
            (base / path).parent.mkdir(parents=True, exist_ok=True)
            (base / path).write_text(text)
            segs.append(Segment(path=path, duration_s=d, size_bytes=len(text.encode())))
        subtitles.append(SubtitleTrack(id=sid, language=lang, name=name, forced=forced, sdh=sdh,
                                       playlist=f"subs/{sid}/index.m3u8", segments=tuple(segs)))
    model = Title(title=title, duration_s=sum(durations), segment_duration_s=segment_s, video=tuple(video),
                  audio=tuple(audio), subtitles=tuple(subtitles))
    playlists = render_title_playlists(model)
    master = playlists.pop("master.m3u8")
    for path, text in playlists.items():
        (base / path).parent.mkdir(parents=True, exist_ok=True)
        (base / path).write_text(text)
    (base / "title.json").write_text(dumps_title(model))
    (base / "master.m3u8").write_text(master)
    return model


def _ts(t: float) -> str:
    m, s = divmod(t, 60)
    return f"{int(m):02d}:{s:06.3f}"






TOPOLOGY = """[stack]
data_dir = "{data}"
storage = "{storage}"
control_port = 0
heartbeat_interval_s = 0.5
ready_timeout_s = 90
[keys]
active = "k1"
[keys.secrets]
k1 = "player-test-secret"
[steering]
port = 0
admin_key = "adm"
heartbeat_timeout_s = 1.5
steering_ttl_s = 2
[regions.us-east-1]
preference = ["eu-west-1"]
origin = {{ name = "origin-us-east-1", port = 0 }}
[[regions.us-east-1.edges]]
name = "edge-us-east-1a"
port = 0
ram_mb = 64
disk_mb = 512
peers = ["edge-us-east-1b"]
[[regions.us-east-1.edges]]
name = "edge-us-east-1b"
port = 0
ram_mb = 64
disk_mb = 512
peers = ["edge-us-east-1a"]
[regions.eu-west-1]
preference = ["us-east-1"]
origin = {{ name = "origin-eu-west-1", port = 0 }}
[[regions.eu-west-1.edges]]
name = "edge-eu-west-1a"
port = 0
ram_mb = 64
disk_mb = 512
"""
EDGES = ("edge-us-east-1a", "edge-us-east-1b", "edge-eu-west-1a")


class Stack:
    """``vodstack up`` over a small topology, driven through its own CLI (--status/--kill/--restart)."""

    def __init__(self, workdir: Path, storage: Path, timeout_s: float = 120.0) -> None:
        self.workdir = workdir
        self.topology = workdir / "topology.toml"
        self.topology.write_text(TOPOLOGY.format(data=workdir / "data", storage=storage))
        self.log = workdir / "up.out"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "vodstack", "up", str(self.topology)], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                         cwd=REPO, env=env)
        deadline = time.monotonic() + timeout_s
        while "every server is ready" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("vodstack up did not get ready:\n" + self.log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        self.urls = {}
        for line in self.cli("--status").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].startswith("http://"):
                self.urls[parts[0]] = parts[2]
        self.steering = self.urls["steering"]

    def cli(self, *args: str) -> str:
        p = subprocess.run([sys.executable, "-m", "vodstack", "up", str(self.topology), *args], capture_output=True,
                           text=True, timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        if p.returncode != 0:
            raise RuntimeError(f"vodstack up {' '.join(args)}: {p.stderr}")
        return p.stdout

    def kill(self, name: str) -> None:
        self.cli("--kill", name)

    def restart(self, name: str) -> None:
        self.cli("--restart", name)

    def status(self) -> dict[str, str]:
        return {line.split()[0]: line.split()[1] for line in self.cli("--status").splitlines() if line.strip()}

    def heal(self) -> None:
        """Restart every edge that is not running and restore evacuated regions."""
        import json
        import urllib.request

        for name, state in self.status().items():
            if name.startswith("edge-") and state != "running":
                self.restart(name)
        for region in ("us-east-1", "eu-west-1"):
            req = urllib.request.Request(f"{self.steering}/regions/{region}/restore", method="POST",
                                         headers={"X-Admin-Key": "adm"})
            urllib.request.urlopen(req, timeout=10).read()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.steering}/edges", timeout=5) as r:
                edges = json.loads(r.read())["edges"]
            if all(e["in_rotation"] for e in edges):
                return
            time.sleep(0.2)
        raise RuntimeError("edges did not come back into rotation")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
