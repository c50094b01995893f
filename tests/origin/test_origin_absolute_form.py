"""The origin accepts an absolute-form request line (RFC 9112 §3.2.2) as it accepts the origin form.

``GET http://x/t1/master.m3u8 HTTP/1.1`` names the object ``t1/master.m3u8`` whatever the ``Host``
header says; a path escape written in absolute form is refused exactly as in origin form. Raw bytes
on a real ``vodstack origin`` process (no client normalises the target), and the pure rule.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Iterator

import pytest

from origin.server.request_paths import key_for_request_path, origin_form
from origin.storage import InvalidKey, NotFound
from tests.procs import Server

from origin_helpers import SECRET, title_files

FILES = title_files()


@pytest.fixture(scope="module")
def origin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("abs") / "root"
    for key, data in FILES.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root.parent / "secret.txt").write_bytes(SECRET)
    server = Server("origin-abs", ["origin", "--storage", str(root), "--port", "0"], Path(root.parent))
    try:
        yield server.url
    finally:
        server.stop()


async def _raw(url: str, request_line: str, host: str = "elsewhere.example") -> tuple[int, dict[str, str], bytes]:
    """Send ``request_line`` byte for byte (with a ``Host`` and ``Connection: close``); status, headers, body."""
    addr, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(addr, int(port))
    try:
        writer.write(f"{request_line}\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


@pytest.mark.parametrize("target,key", [
    ("http://x/t1/master.m3u8", "t1/master.m3u8"),
    ("http://x:8080/t1/video/r1/init.mp4?token=abc&x=1", "t1/video/r1/init.mp4"),  # with a query
    ("http://x/t1/a%20b.m4s", "t1/a b.m4s"),  # an encoded path, decoded once
    ("http://x/t1/%2541.m4s", "t1/%41.m4s"),  # ... exactly once
    ("HTTPS://X/t1/title.json", "t1/title.json"),  # scheme and host are case-insensitive
    ("http://user@x/t1/notes.bin#frag", "t1/notes.bin"),
])
async def test_absolute_form_get_and_head_serve_the_object(origin_url, target, key):
    status, headers, body = await _raw(origin_url, f"GET {target} HTTP/1.1")
    assert status == 200 and body == FILES[key]
    status, headers, body = await _raw(origin_url, f"HEAD {target} HTTP/1.1")
    assert status == 200 and body == b"" and int(headers["content-length"]) == len(FILES[key])
    origin_status, _, origin_body = await _raw(origin_url, f"GET /{target.split('/', 3)[3]} HTTP/1.1")
    assert (origin_status, origin_body) == (200, FILES[key])  # the same answer as the origin form


async def test_absolute_form_with_a_range_is_answered_like_the_origin_form(origin_url):
    addr, port = origin_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(addr, int(port))
    try:
        writer.write(b"GET http://x/t1/video/r1/00001.m4s HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\n"
                     b"Connection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    assert data.startswith(b"HTTP/1.1 206 ")
    assert data.endswith(FILES["t1/video/r1/00001.m4s"][10:20])


@pytest.mark.parametrize("target,status", [
    ("http://x/../etc/passwd", 400),
    ("http://x/t1/../../secret.txt", 400),
    ("http://x/t1/%2e%2e/%2e%2e/secret.txt", 400),
    ("http://x/t1%2f..%2f..%2fsecret.txt/x", 400),
    ("http://x//etc/passwd", 400),
    ("ftp://x/t1/master.m3u8", 400),  # not an http URI
    ("http://x", 404),  # no path: the root, no object
    ("http://x/t1", 404),
    ("http://x/_/nothing", 404),
])
async def test_absolute_form_escapes_are_refused_as_in_origin_form(origin_url, target, status):
    got, _, body = await _raw(origin_url, f"GET {target} HTTP/1.1")
    assert got == status
    assert SECRET not in body
    if target.startswith("http://x/"):  # the origin form of the same path gets the same status
        assert (await _raw(origin_url, f"GET /{target.split('/', 3)[3]} HTTP/1.1"))[0] == status


async def test_health_in_absolute_form(origin_url):
    status, _, body = await _raw(origin_url, "GET http://x/_/health HTTP/1.1")
    assert status == 200 and b'"status": "ok"' in body


@pytest.mark.parametrize("target,path", [
    ("/t1/a", "/t1/a"),
    ("http://x/t1/a?q", "/t1/a?q"),
    ("http://x", "/"),
    ("http://x?q=1", "/?q=1"),
    ("HtTp://a.b:1/c", "/c"),
    ("x/t1/a", "x/t1/a"),  # not absolute-form: left for the origin-form rule to refuse
])
def test_origin_form(target, path):
    assert origin_form(target) == path


@pytest.mark.parametrize("target,error", [
    ("mailto://x/t1/a", InvalidKey),
    ("http:/t1/a", InvalidKey),
    ("http://x/../t1/a", InvalidKey),
    ("http://x/t1", NotFound),
    ("http://x/", NotFound),
])
def test_absolute_form_refusals(target, error):
    with pytest.raises(error):
        key_for_request_path(target)
