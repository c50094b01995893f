"""``vodstack play --verify`` on streams none of us wrote (ffmpeg's HLS muxer: MPEG-TS with two variants,
fMP4 with byte ranges and an audio group, fMP4 with two audio groups, AES-128; its DASH muxer), served by
a plain static server (``aiohttp.web.static``, Range requests): every downloaded segment decodes, with no
media error; and the same streams broken (a corrupted segment, a truncated one, a broken init section, a
timestamp gap, audio 300 ms late) are caught with the URL and what is wrong, ``play`` exiting 4. The
verifier itself: AES-128 with a wrong key is a media error, and a verifier that falls behind says no
(bounded memory) instead of queueing bodies."""
from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from client.playlists import parse_media, resolve
from client.verify import MediaVerifier
from foreign_streams import SOURCES, X264, StaticServer, make_foreign_streams
from player_helpers import REPO


def play(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vodstack", "play", *args, "--speed", "20"], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def _copy(root: Path, name: str, pattern: str, sub: str = "") -> Path:
    out = root / name
    out.mkdir()
    for f in (root / sub).glob(pattern):
        shutil.copy(f, out / f.name)
    return out


def _broken_streams(root: Path) -> dict[str, str]:
    """Copies of ffmpeg's streams, each broken one way."""
    noise = random.Random(7).randbytes(4096)
    corrupt = _copy(root, "corrupt", "ts_*")
    shutil.copy(root / "master.m3u8", corrupt / "master.m3u8")
    for v in (0, 1):  # whichever rung the ABR takes for segment 1
        seg = corrupt / f"ts_{v}_001.ts"
        data = bytearray(seg.read_bytes())
        mid = len(data) // 2
        data[mid:mid + len(noise)] = noise
        seg.write_bytes(bytes(data))
    gap = _copy(root, "gap", "ts_*")
    shutil.copy(root / "master.m3u8", gap / "master.m3u8")
    for v in (0, 1):  # segment 1 half a second late: re-muxed with its timestamps moved on
        seg = gap / f"ts_{v}_001.ts"
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-copyts", "-i", str(seg), "-c", "copy",
                        "-output_ts_offset", "0.5", "-muxdelay", "0", "-muxpreload", "0", "-f", "mpegts",
                        str(gap / "moved.ts")], check=True, timeout=60)
        (gap / "moved.ts").replace(seg)
    truncated = _copy(root, "truncated", "*", "dash")
    for v in (0, 1):
        seg = truncated / f"chunk-stream{v}-00002.m4s"
        seg.write_bytes(seg.read_bytes()[:seg.stat().st_size // 2])
    badinit = _copy(root, "badinit", "*", "dash")
    for v in (0, 1):
        init = badinit / f"init-stream{v}.m4s"
        init.write_bytes(init.read_bytes()[:400])  # cut inside its sample description
    late = root / "late"
    late.mkdir()
    sources = SOURCES[:4] + ["-itsoffset", "0.3"] + SOURCES[4:]  # the audio input 0.3 s late
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *sources, "-t", "6", "-map", "0:v",
                    "-map", "1:a", *X264, "-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
                    "-hls_segment_type", "fmp4", "-hls_flags", "single_file", "-var_stream_map",
                    "v:0,agroup:aud a:0,agroup:aud,language:en,default:yes", "-master_pl_name", "master.m3u8",
                    "f_%v.m3u8"], cwd=late, check=True, timeout=120)
    return {"corrupt": "corrupt/master.m3u8", "gap": "gap/master.m3u8", "truncated": "truncated/manifest.mpd",
            "badinit": "badinit/manifest.mpd", "late": "late/master.m3u8"}


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    good = make_foreign_streams(root)
    broken = _broken_streams(root)
    with StaticServer(root) as server:
        yield server.url, {**good, **broken}, root


def verified(url: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    r = play(url, "--verify", "--network", "none", "--quiet", "--json", *extra)
    assert r.returncode in (0, 4), r.stderr[-2000:]
    return r, json.loads(r.stdout)


@pytest.mark.parametrize("kind", ["ts", "fmp4", "groups", "aes", "dash"])
def test_every_segment_of_a_foreign_stream_decodes(streams, kind):
    url, names, _ = streams
    r, doc = verified(f"{url}/{names[kind]}")
    assert r.returncode == 0, doc["media_errors"]
    v = doc["verification"]
    media = [q for q in doc["requests"] if q["ot"] in ("v", "a") and q["complete"]]
    inits = [q for q in doc["requests"] if q["ot"] == "i"]
    assert doc["ok"] and doc["media_errors"] == [] and v["errors"] == 0 and v["skipped"] == {}
    assert v["segments_checked"] == len(media) >= 3  # every media segment it downloaded
    assert v["inits_checked"] == len(inits) and (not inits) == (kind in ("ts", "aes"))
    assert v["video_frames"] == 3 * len(doc["segments"]) and v["audio_frames"] >= 8 * len(doc["segments"])
    assert v["cpu_s"] > 0
    if kind == "aes":  # decrypted first: an encrypted TS segment is no container at all
        assert doc["bytes"]["keys"] == 16
    if kind in ("fmp4", "groups", "dash"):  # a separate audio rendition, checked too
        assert any(q["ot"] == "a" for q in media)


def test_a_corrupted_segment_is_a_media_error_with_its_url(streams):
    url, names, _ = streams
    r = play(f"{url}/{names['corrupt']}", "--verify", "--network", "none", "--quiet")
    assert r.returncode == 4, r.stderr[-2000:]
    assert r.stdout.startswith("ok: ")  # it played; its media is broken
    errors = [line for line in r.stdout.splitlines() if "media error:" in line]
    assert len(errors) == 1, r.stdout
    assert f"{url}/corrupt/ts_" in errors[0] and "_001.ts: video seg 1 of " in errors[0]
    assert "packets corrupt" in errors[0] or "decode failed" in errors[0]
    assert "verified 3 segments" in r.stdout and "1 media error," in r.stdout
    assert "vodstack: error: 1 media error (see above)" in r.stderr


def test_a_timestamp_gap_is_caught_where_it_is_and_the_next_segment_is_not_blamed(streams):
    url, names, _ = streams
    r, doc = verified(f"{url}/{names['gap']}")
    assert r.returncode == 4
    errors = doc["media_errors"]
    assert {e["segment"] for e in errors} == {1}
    assert all(e["url"].startswith(f"{url}/gap/ts_") and e["url"].endswith("_001.ts") for e in errors)
    video = [e["what"] for e in errors if e["what"].startswith("video seg 1 of ")]
    assert len(video) == 1 and video[0].endswith("starts at 2.500 s, expected 2.000 s: gap of 500 ms")
    # the muxed audio moved too: a gap against segment 0's audio
    assert any(e["what"].startswith("audio in video seg 1 of ") and e["what"].endswith("gap of 500 ms")
               for e in errors)


def test_a_truncated_fmp4_segment_is_caught(streams):
    url, names, _ = streams
    r, doc = verified(f"{url}/{names['truncated']}")
    assert r.returncode == 4
    errors = doc["media_errors"]
    assert errors and {e["segment"] for e in errors} == {1}
    assert all(e["url"].startswith(f"{url}/truncated/chunk-stream") and e["url"].endswith("-00002.m4s")
               for e in errors)


def test_a_broken_init_section_is_one_error_and_its_segments_are_not_checked(streams):
    url, names, _ = streams
    r, doc = verified(f"{url}/{names['badinit']}")
    assert r.returncode == 4
    errors = doc["media_errors"]
    video_inits = [e for e in errors if e["segment"] is None]
    assert errors == video_inits and len({e["url"] for e in errors}) == len(errors)
    assert all(e["url"].startswith(f"{url}/badinit/init-stream") and " init of " in e["what"] and
               "undecodable" in e["what"] for e in errors)
    v = doc["verification"]
    assert v["skipped"]["init broken"] == len(doc["segments"])  # every video segment, none checked
    assert v["audio_frames"] > 0 and v["video_frames"] == 0


def test_audio_late_by_300_ms_is_out_of_sync(streams):
    url, names, _ = streams
    r, doc = verified(f"{url}/{names['late']}")
    assert r.returncode == 4
    [error] = doc["media_errors"]
    assert error["url"] == f"{url}/late/f_1.m4s" and error["what"].startswith("audio lags video by ")
    lag_ms = int(error["what"].split("by ")[1].split(" ms")[0])
    assert 240 <= lag_ms <= 300  # 300 ms less what the encoders' own delays take back (B-frames, AAC priming)


def test_verify_every_2_checks_the_even_segments_only(streams):
    url, names, _ = streams
    r, doc = verified(f"{url}/{names['corrupt']}", "--verify-every", "2")
    assert r.returncode == 0 and doc["media_errors"] == []  # segment 1, the broken one, is not looked at
    assert doc["verification"]["segments_checked"] == 2  # 0 and 2


def test_verify_every_must_be_positive(streams):
    url, names, _ = streams
    r = play(f"{url}/{names['ts']}", "--verify-every", "0")
    assert r.returncode == 2 and r.stderr.strip().endswith("--verify-every must be at least 1")


def test_playing_without_verify_reports_no_verification(streams):
    url, names, _ = streams
    r = play(f"{url}/{names['corrupt']}", "--network", "none", "--quiet", "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["verification"] is None and doc["media_errors"] == []


def _aes_segments(root: Path, base: str) -> list[tuple[object, str, bytes]]:
    playlist = parse_media((root / "aes.m3u8").read_text(), f"{base}/aes.m3u8")
    return [(seg, resolve(f"{base}/aes.m3u8", seg.uri), (root / seg.uri).read_bytes()) for seg in playlist.segments]


async def test_aes_128_with_the_wrong_key_is_a_media_error(streams):
    url, _, root = streams
    key_url = f"{url}/enc.key"
    for key, errors in (((root / "enc.key").read_bytes(), 0), (bytes(16), 3)):
        verifier = MediaVerifier()
        for i, (seg, seg_url, body) in enumerate(_aes_segments(root, url)):
            assert verifier.wants("video", i)
            verifier.add_segment("video", i, seg=seg, base=f"{url}/aes.m3u8", url=seg_url, body=body,
                                 track_key="v", track=None, keys={key_url: key})
        await asyncio.wait_for(verifier.drain(), 60)
        assert verifier.summary.segments_checked == 3 and verifier.summary.errors == errors
        if errors:
            assert verifier.errors[0].what.startswith("video seg 0 of ?: AES-128 decryption failed")
            assert verifier.errors[0].url == f"{url}/aes_000.ts"


async def test_a_verifier_that_falls_behind_says_no_instead_of_queueing(streams):
    url, _, root = streams
    release = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(release.wait, 30)  # the only thread is busy: checks wait
        verifier = MediaVerifier(max_pending=2, executor=pool)
        segments = _aes_segments(root, url)
        key = {f"{url}/enc.key": (root / "enc.key").read_bytes()}
        said = []
        for i, (seg, seg_url, body) in enumerate(segments):
            said.append(verifier.wants("video", i))
            if said[-1]:
                verifier.add_segment("video", i, seg=seg, base=f"{url}/aes.m3u8", url=seg_url, body=body,
                                     track_key="v", track=None, keys=key)
        assert said == [True, True, False] and verifier.summary.skipped == {"behind": 1}
        release.set()
        await asyncio.wait_for(verifier.drain(), 60)
    assert verifier.summary.segments_checked == 2 and verifier.summary.errors == 0
