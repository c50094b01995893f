"""Helpers shared by the origin tests (a plain module: conftest.py is not importable by name)."""
from __future__ import annotations

import asyncio
import random

SECRET = b"TOP-SECRET-do-not-serve-3f9a1c"
BIG_BYTES = 3 * 1024 * 1024 + 17


def title_files() -> dict[str, bytes]:
    """The objects of title ``t1`` (deterministic bytes)."""
    rnd = random.Random(7)
    return {
        "t1/master.m3u8": b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nvideo/r1/index.m3u8\n",
        "t1/title.json": b'{"title": "t1"}',
        "t1/video/r1/index.m3u8": b"#EXTM3U\n#EXTINF:4,\n00001.m4s\n",
        "t1/video/r1/init.mp4": rnd.randbytes(1500),
        "t1/video/r1/00001.m4s": rnd.randbytes(100_000),
        "t1/video/r1/big.m4s": rnd.randbytes(BIG_BYTES),
        "t1/subs/en/00001.vtt": b"WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n",
        "t1/notes.bin": rnd.randbytes(10),
        "t1/empty.m4s": b"",
        "t1/a b.m4s": b"space in the name",
        "t1/%41.m4s": b"literal percent name",
    }


async def raw_get(base_url: str, target: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One HTTP/1.1 GET with the request target sent byte for byte (no client normalisation)."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape"))
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    status_line, _, _ = data.partition(b"\r\n")
    return int(status_line.split()[1]), data


def access_lines(stderr: str) -> list[dict[str, str]]:
    """The fields of the ``origin.access`` lines in captured stderr (values without spaces)."""
    marker = " INFO origin.access request "
    return [dict(field.split("=", 1) for field in line.split(marker, 1)[1].split(" "))
            for line in stderr.splitlines() if marker in line]


async def read_access_lines(capsys, count: int, timeout_s: float = 3.0) -> list[dict[str, str]]:
    """Captured access lines once ``count`` are there (the log is written in batches) or the time is up."""
    err = ""
    for _ in range(int(timeout_s / 0.05)):
        err += capsys.readouterr().err
        if len(access_lines(err)) >= count:
            break
        await asyncio.sleep(0.05)
    return access_lines(err)
