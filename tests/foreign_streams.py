"""Streams none of us wrote: ffmpeg's own HLS and DASH muxers, and a plain static server for them.

    make_foreign_streams(root)   -> {"ts": "master.m3u8", "fmp4": ..., "aes": ..., "dash": ...} (paths
                                    under root): HLS MPEG-TS with two variants, HLS fMP4 with byte ranges
                                    (one file per rendition) and a separate audio group, HLS AES-128
                                    (a media playlist, key ``enc.key`` beside it), HLS fMP4 with
                                    two audio groups (``hi`` with the 360p variant g_0/g_2, ``lo``
                                    with the 180p one g_1/g_3), and DASH (SegmentTemplate
                                    with a timeline). 6 s of testsrc2 + sine at 25 fps, 2 s segments.
    StaticServer(root)           ``aiohttp.web.static`` (Range requests, as nginx would answer them) in its
                                 own process on 127.0.0.1 port 0; ``.url``; a context manager.
"""
from __future__ import annotations

import os
import secrets
import select
import signal
import subprocess
import sys
from pathlib import Path

SOURCES = ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000"]
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"]
TWO_RUNGS = ["-b:v:0", "800k", "-s:v:0", "640x360", "-b:v:1", "300k", "-s:v:1", "320x180"]


def _ffmpeg(args: list[str], cwd: Path) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *SOURCES, "-t", "6", *args],
                   cwd=cwd, check=True, timeout=120)


def make_foreign_streams(root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    _ffmpeg(["-map", "0:v", "-map", "1:a", "-map", "0:v", "-map", "1:a", *X264, *TWO_RUNGS, "-c:a", "aac",
             "-b:a", "64k", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
             "-var_stream_map", "v:0,a:0 v:1,a:1", "-master_pl_name", "master.m3u8",
             "-hls_segment_filename", "ts_%v_%03d.ts", "ts_%v.m3u8"], root)
    _ffmpeg(["-map", "0:v", "-map", "0:v", "-map", "1:a", *X264, *TWO_RUNGS, "-c:a", "aac", "-f", "hls",
             "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4", "-hls_flags", "single_file",
             "-var_stream_map", "v:0,agroup:aud v:1,agroup:aud a:0,agroup:aud,language:en,default:yes",
             "-master_pl_name", "fmaster.m3u8", "f_%v.m3u8"], root)
    (root / "enc.key").write_bytes(secrets.token_bytes(16))
    (root / "key.info").write_text("enc.key\nenc.key\n")  # URI as written in the playlist, then the file
    _ffmpeg(["-map", "0:v", "-map", "1:a", *X264, "-b:v", "500k", "-c:a", "aac", "-f", "hls", "-hls_time", "2",
             "-hls_playlist_type", "vod", "-hls_key_info_file", "key.info", "-hls_segment_filename", "aes_%03d.ts",
             "aes.m3u8"], root)
    _ffmpeg(["-map", "0:v", "-map", "0:v", "-map", "1:a", "-map", "1:a", *X264, *TWO_RUNGS, "-c:a", "aac",
             "-b:a:0", "128k", "-b:a:1", "48k", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
             "-hls_segment_type", "fmp4", "-var_stream_map",
             "v:0,agroup:hi v:1,agroup:lo a:0,agroup:hi,language:en,default:yes a:1,agroup:lo,language:en,default:yes",
             "-master_pl_name", "gmaster.m3u8", "-hls_segment_filename", "g_%v_%03d.m4s",
             "-hls_fmp4_init_filename", "g_%v_init.mp4", "g_%v.m3u8"], root)
    (root / "dash").mkdir(exist_ok=True)
    _ffmpeg(["-map", "0:v", "-map", "0:v", "-map", "1:a", *X264, *TWO_RUNGS, "-c:a", "aac", "-f", "dash",
             "-seg_duration", "2", "-use_template", "1", "-use_timeline", "1",
             "-adaptation_sets", "id=0,streams=v id=1,streams=a", "dash/manifest.mpd"], root)
    return {"ts": "master.m3u8", "fmp4": "fmaster.m3u8", "aes": "aes.m3u8", "groups": "gmaster.m3u8",
            "dash": "dash/manifest.mpd"}


_SERVER = """
import asyncio, sys
from aiohttp import web
async def main():
    app = web.Application(); app.router.add_static("/", sys.argv[1])
    runner = web.AppRunner(app); await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0); await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


class StaticServer:
    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(root)], stdout=subprocess.PIPE, text=True,
                                     start_new_session=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30.0)
        line = self.proc.stdout.readline() if ready else ""  # the port, or EOF if it died
        if not line.strip():
            self.close()
            raise RuntimeError("the static server did not start")
        self.url = f"http://127.0.0.1:{int(line)}"

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)

    def __enter__(self) -> StaticServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
