"""Leftovers of killed writers, for real: a process SIGKILLed in the middle of a storage write, a
publish SIGKILLed between two uploads, an ingest SIGKILLed mid-encode. No temporary file is ever served (origin and edge answer 404 for any
path part starting with '.'), and the next ingest or ``vodstack gc`` removes them."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import REPO, run_vodstack
from edge.tokens import sign_token
from origin.storage.local import TEMP_FOLDER
from tests.procs import Server

KEY = ("k1", "test-secret-leftovers")
FLAGS = ("--codecs", "h264", "--segment-duration", "2", "--chunk-duration", "2", "--nice", "10", "--jobs", "2",
         "--no-vmaf", "--json")
LEGACY = "t1/video/h264-234p/.00001.m4s.tmp-0123456789ab"  # what a killed publish left before this fix (beside the key)

WRITER = """
import asyncio, sys
from origin.storage.local import LocalStorage

async def main():
    storage = LocalStorage(sys.argv[1])
    async def body():
        yield b"x" * 3_000_000  # past the write buffer: on disk in the temp file at once
        print("writing", flush=True)
        await asyncio.sleep(3600)
    await storage.write("t1/v/0123456789abcdef/video/r/00001.m4s", body())

asyncio.run(main())
"""


PUBLISHER = """
import asyncio, sys
from manifests import InitSegment, Segment, Title, VideoRendition, render_title_playlists
from origin.storage.local import LocalStorage
from origin.transcode.publish import publish_title

fifo, folder = sys.argv[2], sys.argv[3]
v = VideoRendition(id="r", codec="avc1.64000d", codec_family="h264", width=416, height=234, frame_rate=25.0,
                   bandwidth_bps=1, average_bandwidth_bps=1, nominal_bitrate_kbps=1, playlist="video/r/index.m3u8",
                   init=InitSegment(path="video/r/init.mp4", size_bytes=4),
                   segments=(Segment(path="video/r/00001.m4s", duration_s=2.0, size_bytes=6),))
title = Title(title="t1", duration_s=2.0, segment_duration_s=2.0, video=(v,))
open(folder + "/init", "wb").write(b"init")
files = {"video/r/init.mp4": folder + "/init", "video/r/00001.m4s": fifo}  # the segment's upload blocks
asyncio.run(publish_title(LocalStorage(sys.argv[1]), "t1", title=title, files=files,
                          playlists=render_title_playlists(title), concurrency=1))
"""


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _wait(pred, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _kill_a_writer(out: Path) -> Path:
    """Start a process writing one object, SIGKILL it mid-write; the temp file it left."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, env=env, cwd=REPO)
    assert proc.stdout is not None and proc.stdout.readline() == b"writing\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    temps = list((out / TEMP_FOLDER).iterdir())
    assert len(temps) == 1 and temps[0].stat().st_size == 3_000_000
    return temps[0]


def test_a_killed_write_is_never_served_and_gc_removes_it(clip, tmp_path):
    out = tmp_path / "out"
    first = run_vodstack("ingest", str(clip), "--title", "t1", "--out", str(out), *FLAGS)
    assert first.returncode == 0, first.stderr
    temp = _kill_a_writer(out)
    legacy = out / LEGACY
    legacy.parent.mkdir(parents=True, exist_ok=True)
    legacy.write_bytes(b"partial")
    dotted = sorted(Path(d) / n for d, dirs, files in os.walk(out) for n in (*dirs, *files) if n.startswith("."))
    assert dotted == [out / TEMP_FOLDER, legacy] and temp.parent == out / TEMP_FOLDER  # nothing beside the keys

    logs = tmp_path / "logs"
    logs.mkdir()
    origin = Server("origin", ["origin", "--storage", str(out), "--port", "0"], logs)
    edge = None
    try:
        edge = Server("edge", ["edge", "--origin", origin.url, "--port", "0", "--cache-dir", str(tmp_path / "cache"),
                               "--token-key", f"{KEY[0]}={KEY[1]}", "--name", "e1"], logs)
        token = sign_token(KEY[0], KEY[1], "t1", int(time.time()) + 3600)
        tmp_key = f"{TEMP_FOLDER}/{temp.name}"
        for key in (LEGACY, tmp_key, f"t1/{TEMP_FOLDER}/x", "t1/.hidden"):
            assert _status(f"{origin.url}/{key}") == 404, key
        assert _status(f"{edge.url}/t/{token}/{LEGACY}") == 404
        assert _status(f"{edge.url}/t/{token}/t1/master.m3u8") == 200
    finally:
        if edge is not None:
            edge.stop()
        origin.stop()

    # gc with the default grace: the dead writer's file goes, the legacy one (writer unknown) stays
    gc = run_vodstack("gc", "--storage", str(out), "--work-dir", str(tmp_path), "--json")
    assert gc.returncode == 0, gc.stderr
    report = json.loads(gc.stdout)
    assert report["temp_files"] == [{"path": f"{TEMP_FOLDER}/{temp.name}", "reason": "writer_gone"}]
    assert not temp.exists() and legacy.exists()
    assert report["titles"][0]["removed"] == []  # the title itself is untouched
    gc = run_vodstack("gc", "--storage", str(out), "--grace", "0", "--work-dir", str(tmp_path), "--json")
    assert json.loads(gc.stdout)["temp_files"] == [{"path": LEGACY, "reason": "older_than_grace"}]
    assert not legacy.exists()


def test_the_next_ingest_removes_what_killed_ones_left(clip, tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    work.mkdir()
    temp = _kill_a_writer(out)
    # an ingest SIGKILLed mid-encode (with its ffmpeg children): its work folder stays behind
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "vodstack", "ingest", str(clip), "--title", "t1", "--out", str(out),
                             "--work-dir", str(work), *FLAGS], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, cwd=REPO, start_new_session=True)
    try:
        _wait(lambda: any(work.iterdir()) or proc.poll() is not None, "the work folder")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    left = list(work.iterdir())
    assert len(left) == 1 and left[0].name.startswith("vodstack-ingest-t1-")
    kept = work / "vodstack-ingest-t1-1.otherhost-kept0001"  # kept on purpose (--keep-work): never swept
    kept.mkdir()
    (kept / ".vodstack-kept").write_text("kept\n")

    again = run_vodstack("ingest", str(clip), "--title", "t1", "--out", str(out), "--work-dir", str(work), *FLAGS)
    assert again.returncode == 0, again.stderr
    assert not temp.exists()
    assert list(work.iterdir()) == [kept]
    assert list((out / TEMP_FOLDER).iterdir()) == []


def test_a_publish_killed_midway_publishes_nothing_and_gc_cleans_up(clip, tmp_path):
    out = tmp_path / "out"
    first = run_vodstack("ingest", str(clip), "--title", "t1", "--out", str(out), *FLAGS)
    assert first.returncode == 0, first.stderr
    version = json.loads(first.stdout)["version"]
    entry = {n: (out / "t1" / n).read_bytes() for n in ("master.m3u8", "title.json")}
    fifo = tmp_path / "segment.fifo"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(out), str(fifo), str(tmp_path)], env=env, cwd=REPO)
    try:
        fd = None

        def reader_there() -> bool:  # a non-blocking open: a child that died never hangs the test
            nonlocal fd
            assert proc.poll() is None, "the publisher died"
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody reads it yet
                return False
            return True
        _wait(reader_there, "the publisher to hash the segment")
        os.write(fd, b"seg001")  # the hash reads it once; the upload then waits for a writer forever
        os.close(fd)
        temp_folder = out / TEMP_FOLDER

        def stuck_mid_upload() -> bool:
            versions = [p for p in (out / "t1" / "v").iterdir() if p.name != version]
            return bool(versions) and (versions[0] / "video/r/init.mp4").exists() and any(temp_folder.iterdir())
        _wait(stuck_mid_upload, "the publish to block in its second upload")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert {n: (out / "t1" / n).read_bytes() for n in entry} == entry  # the title is as it was
    unnamed = next(p.name for p in (out / "t1" / "v").iterdir() if p.name != version)
    (temp,) = list((out / TEMP_FOLDER).iterdir())

    logs = tmp_path / "logs"
    logs.mkdir()
    origin = Server("origin", ["origin", "--storage", str(out), "--port", "0"], logs)
    try:
        assert _status(f"{origin.url}/{TEMP_FOLDER}/{temp.name}") == 404
        assert _status(f"{origin.url}/t1/master.m3u8") == 200
    finally:
        origin.stop()
    gc = run_vodstack("gc", "--storage", str(out), "--grace", "0", "--work-dir", str(tmp_path), "--json")
    assert gc.returncode == 0, gc.stderr
    report = json.loads(gc.stdout)
    assert report["titles"][0]["removed_versions"] == [unnamed]
    assert {r["reason"] for r in report["titles"][0]["removed"]} == {"unnamed"}
    assert report["temp_files"] == [{"path": f"{TEMP_FOLDER}/{temp.name}", "reason": "writer_gone"}]
    assert [p.name for p in (out / "t1" / "v").iterdir()] == [version]
    assert {n: (out / "t1" / n).read_bytes() for n in entry} == entry
