"""The origin serving a local folder: bytes, headers, ranges, validators, paths, health, metrics, logs."""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict
from yarl import URL

from origin.server.config import OriginConfig
from httpsem.semantics import http_date
from origin.storage import open_storage

from origin_helpers import BIG_BYTES, SECRET, raw_get, read_access_lines, title_files

FILES = title_files()


def cfg_for(root: Path, **overrides: object) -> OriginConfig:
    return OriginConfig(storage_url=str(root), port=0, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def origin(title_root: Path, start_origin) -> str:
    return await start_origin(cfg_for(title_root, playlist_max_age_s=7, region="eu-test"))


async def get(url: str, headers: dict[str, str] | None = None,
              method: str = "GET") -> tuple[int, CIMultiDict[str], bytes]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.request(method, URL(url, encoded=True), headers=headers) as r:
            return r.status, r.headers.copy(), await r.read()


# ---------------------------------------------------------------- bytes and headers
@pytest.mark.parametrize("key, content_type, cache_control", [
    ("t1/video/r1/00001.m4s", "video/iso.segment", "public, max-age=31536000, immutable"),
    ("t1/video/r1/init.mp4", "video/mp4", "public, max-age=31536000, immutable"),
    ("t1/master.m3u8", "application/vnd.apple.mpegurl", "public, max-age=7"),
    ("t1/title.json", "application/json", "public, max-age=7"),
    ("t1/subs/en/00001.vtt", "text/vtt; charset=utf-8", "public, max-age=31536000, immutable"),
    ("t1/notes.bin", "application/octet-stream", "public, max-age=31536000, immutable"),
])
async def test_get_serves_bytes_with_type_and_caching(origin: str, key: str, content_type: str, cache_control: str):
    status, headers, body = await get(f"{origin}/{key}")
    assert status == 200
    assert body == FILES[key]
    assert headers["Content-Type"] == content_type
    assert headers["Cache-Control"] == cache_control
    assert headers["Content-Length"] == str(len(FILES[key]))
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"].startswith('"') and headers["Last-Modified"].endswith("GMT")


async def test_big_object_goes_whole_and_by_range(origin: str):
    big = FILES["t1/video/r1/big.m4s"]
    status, headers, body = await get(f"{origin}/t1/video/r1/big.m4s")
    assert status == 200 and body == big and len(body) == BIG_BYTES
    status, headers, body = await get(f"{origin}/t1/video/r1/big.m4s", {"Range": "bytes=1000000-2500000"})
    assert status == 206
    assert headers["Content-Range"] == f"bytes 1000000-2500000/{BIG_BYTES}"
    assert body == big[1000000:2500001]


async def test_etag_and_dates_are_the_storage_s(origin: str, title_root: Path):
    storage = open_storage(str(title_root))
    info = await storage.stat("t1/video/r1/00001.m4s")
    _, headers, _ = await get(f"{origin}/t1/video/r1/00001.m4s", method="HEAD")
    assert headers["ETag"] == f'"{info.etag}"'
    assert headers["Last-Modified"] == http_date(info.last_modified_s)


async def test_head_has_the_headers_and_no_body(origin: str):
    status, headers, body = await get(f"{origin}/t1/video/r1/00001.m4s", method="HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Length"] == "100000"
    assert headers["Content-Type"] == "video/iso.segment"


async def test_empty_object(origin: str):
    status, headers, body = await get(f"{origin}/t1/empty.m4s")
    assert (status, body, headers["Content-Length"]) == (200, b"", "0")


async def test_names_are_percent_decoded_exactly_once(origin: str):
    assert (await get(f"{origin}/t1/a%20b.m4s"))[2] == FILES["t1/a b.m4s"]
    assert (await get(f"{origin}/t1/%2541.m4s"))[2] == FILES["t1/%41.m4s"]


# ---------------------------------------------------------------- ranges and validators
@pytest.mark.parametrize("range_header, status, content_range, piece", [
    ("bytes=10-19", 206, "bytes 10-19/100000", slice(10, 20)),
    ("bytes=99990-", 206, "bytes 99990-99999/100000", slice(99990, 100000)),
    ("bytes=-5", 206, "bytes 99995-99999/100000", slice(99995, 100000)),
    ("bytes=0-999999", 206, "bytes 0-99999/100000", slice(0, 100000)),
    ("bytes=100000-", 416, "bytes */100000", slice(0, 0)),
    ("bytes=-0", 416, "bytes */100000", slice(0, 0)),
    ("bytes=5-3", 200, None, slice(0, 100000)),
    ("bytes=0-1,5-6", 200, None, slice(0, 100000)),
    ("lines=1-2", 200, None, slice(0, 100000)),
])
async def test_ranges(origin: str, range_header: str, status: int, content_range: str | None, piece: slice):
    got_status, headers, body = await get(f"{origin}/t1/video/r1/00001.m4s", {"Range": range_header})
    assert got_status == status
    assert headers.get("Content-Range") == content_range
    if status != 416:
        assert body == FILES["t1/video/r1/00001.m4s"][piece]


async def test_conditional_requests(origin: str):
    url = f"{origin}/t1/video/r1/00001.m4s"
    _, headers, _ = await get(url)
    etag, last_modified = headers["ETag"], headers["Last-Modified"]
    status, h304, body = await get(url, {"If-None-Match": etag})
    assert (status, body, h304["ETag"]) == (304, b"", etag)
    assert (await get(url, {"If-Modified-Since": last_modified}))[0] == 304
    assert (await get(url, {"If-None-Match": '"other"'}))[0] == 200
    assert (await get(url, {"If-Match": '"other"'}))[0] == 412
    assert (await get(url, {"If-Match": etag, "Range": "bytes=0-0"}))[0] == 206
    assert (await get(url, {"If-Range": etag, "Range": "bytes=0-0"}))[0] == 206
    assert (await get(url, {"If-Range": '"stale"', "Range": "bytes=0-0"}))[0] == 200
    assert (await get(url, {"If-Range": last_modified, "Range": "bytes=0-0"}))[0] == 206


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("path, status", [
    ("/t1/video/r1/99999.m4s", 404),
    ("/t1", 404),
    ("/", 404),
    ("/t1/video", 404),           # a folder is not an object
    ("/_/nothing", 404),          # the server's own namespace
    ("/t1/%zz.m4s", 400),         # bad escape
    ("/t1/%ff.m4s", 400),         # not UTF-8
])
async def test_missing_and_bad_paths(origin: str, path: str, status: int):
    assert (await get(origin + path))[0] == status


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405_with_allow(origin: str, method: str):
    status, headers, _ = await get(f"{origin}/t1/master.m3u8", method=method)
    assert status == 405
    assert headers["Allow"] == "GET, HEAD, OPTIONS"


async def test_a_page_on_another_origin_may_play_from_the_origin(origin: str):
    """The edge's CORS headers: a preflight is answered 204, every object answer (a 404 too) carries
    Access-Control-Allow-Origin and exposes the range headers; the admin paths do not."""
    status, headers, _ = await get(f"{origin}/t1/master.m3u8", method="OPTIONS",
                                   headers={"Origin": "http://page.example", "Access-Control-Request-Method": "GET",
                                            "Access-Control-Request-Headers": "range"})
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "*"
    assert "Range" in headers["Access-Control-Allow-Headers"] and "GET" in headers["Access-Control-Allow-Methods"]
    for path, want in (("/t1/master.m3u8", 200), ("/t1/nothing.m4s", 404)):
        status, headers, _ = await get(origin + path, headers={"Origin": "http://page.example"})
        assert status == want and headers["Access-Control-Allow-Origin"] == "*"
        assert "Content-Range" in headers["Access-Control-Expose-Headers"]
    status, headers, _ = await get(f"{origin}/_/health")
    assert "Access-Control-Allow-Origin" not in headers


TRAVERSALS = [
    "/../secret.txt", "/t1/../../secret.txt", "/t1/video/../../../secret.txt",
    "/%2e%2e/secret.txt", "/t1/%2e%2e/%2e%2e/secret.txt", "/t1/%2E%2E/%2E%2E/secret.txt",
    "/t1/..%2f..%2fsecret.txt", "/t1/%2F..%2F..%2Fsecret.txt", "/t1/%2e%2e%2f%2e%2e%2fsecret.txt",
    "/%2e%2e/rootsecret.m4s", "/t1/%252e%252e/%252e%252e/secret.txt",
    "/t1\\..\\..\\secret.txt", "/t1/..%5c..%5csecret.txt", "/t1/%5c..%5c..%5csecret.txt",
    "/t1/%00/../../secret.txt", "/t1/video/r1/00001.m4s%00.txt", "/%00",
    "//etc/passwd", "/t1//etc/passwd", "/%2Fetc%2Fpasswd", "/t1/%2Fetc/passwd", "///secret.txt",
    "/./t1/../../secret.txt", "/t1/%c0%ae%c0%ae/%c0%ae%c0%ae/secret.txt", "/t1/..;/..;/secret.txt",
    "/t1/link.m4s",  # a symlink inside the root pointing at the secret
    "http://127.0.0.1/../secret.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS)
async def test_traversal_never_leaves_the_root(origin: str, target: str):
    status, raw = await raw_get(origin, target)
    assert status in (400, 404)
    assert SECRET not in raw
    assert b"root:x:0:0" not in raw


# ---------------------------------------------------------------- other ways of sending
async def test_streaming_without_sendfile_gives_the_same_bytes(title_root: Path, start_origin):
    origin = await start_origin(cfg_for(title_root, sendfile=False, chunk_bytes=64 * 1024))
    big = FILES["t1/video/r1/big.m4s"]
    assert (await get(f"{origin}/t1/video/r1/big.m4s"))[2] == big
    status, _, body = await get(f"{origin}/t1/video/r1/big.m4s", {"Range": "bytes=70000-200000"})
    assert status == 206 and body == big[70000:200001]


async def test_small_reads_and_sendfile_meet_at_the_threshold(title_root: Path, start_origin):
    origin = await start_origin(cfg_for(title_root, sendfile_min_bytes=1000))
    data = FILES["t1/video/r1/00001.m4s"]
    for first, last in [(0, 998), (0, 999), (0, 1000), (500, 99999)]:
        status, _, body = await get(f"{origin}/t1/video/r1/00001.m4s", {"Range": f"bytes={first}-{last}"})
        assert status == 206 and body == data[first:last + 1]


def whole_and_range_on_loop(root: Path, loop_name: str, path: str, range_header: str) -> tuple[bytes, bytes]:
    """GET ``path`` whole and with ``Range: range_header`` from an origin on ``loop_name``'s own loop."""
    from origin.server.serve import serve

    async def scenario() -> tuple[bytes, bytes]:
        stop = asyncio.Event()
        listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(cfg_for(root, loop=loop_name), on_listening=listening.set_result,
                                         stop=stop))
        origin = await asyncio.wait_for(listening, 10)
        whole = (await get(f"{origin}{path}"))[2]
        part = (await get(f"{origin}{path}", {"Range": range_header}))[2]
        stop.set()
        await task
        return whole, part

    factory = pytest.importorskip("uvloop").new_event_loop if loop_name == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(scenario())


def test_uvloop_without_sendfile_falls_back_to_reads(title_root: Path):
    """uvloop 0.23 has no loop.sendfile: the origin reads in a thread and still sends the right bytes."""
    whole, part = whole_and_range_on_loop(title_root, "uvloop", "/t1/video/r1/big.m4s", "bytes=300000-")
    assert whole == FILES["t1/video/r1/big.m4s"]
    assert part == FILES["t1/video/r1/big.m4s"][300000:]


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_bodies_larger_than_the_socket_takes_at_once(tmp_path: Path, loop_name: str):
    """The first os.sendfile takes what the socket buffer holds (a few MB at most); the rest goes by
    loop.sendfile (asyncio) or by reads (uvloop), continuing exactly where it stopped."""
    import random
    data = random.Random(3).randbytes(24 * 1024 * 1024 + 5)
    (tmp_path / "t9").mkdir()
    (tmp_path / "t9" / "huge.m4s").write_bytes(data)
    whole, part = whole_and_range_on_loop(tmp_path, loop_name, "/t9/huge.m4s", "bytes=1000001-20000000")
    assert whole == data
    assert part == data[1000001:20000001]


async def test_memory_storage_is_streamed(start_origin):
    storage = open_storage("memory://origin-test-memory")
    await storage.write("m1/video/r1/00001.m4s", b"x" * 300_000 + b"end")
    origin = await start_origin(OriginConfig(storage_url="memory://origin-test-memory", port=0, chunk_bytes=65536))
    status, headers, body = await get(f"{origin}/m1/video/r1/00001.m4s", {"Range": "bytes=-3"})
    assert (status, body) == (206, b"end")
    assert (await get(f"{origin}/m1/video/r1/00001.m4s"))[2] == b"x" * 300_000 + b"end"


# ---------------------------------------------------------------- health, metrics, logs
async def test_health_follows_the_storage_root(title_root: Path, start_origin):
    origin = await start_origin(cfg_for(title_root, region="eu-test"))
    status, _, body = await get(f"{origin}/_/health")
    import json
    health = json.loads(body)
    assert status == 200
    assert health == {"status": "ok", "region": "eu-test",
                      "storage": {"url": title_root.as_uri(), "reachable": True, "error": None}, "delay_ms": 0}
    moved = title_root.with_name("moved")
    title_root.rename(moved)
    status, _, body = await get(f"{origin}/_/health")
    assert status == 503 and json.loads(body)["storage"]["reachable"] is False
    moved.rename(title_root)
    assert (await get(f"{origin}/_/health"))[0] == 200


async def test_metrics_count_requests_bytes_and_storage_latency(origin: str):
    await get(f"{origin}/t1/video/r1/00001.m4s")
    await get(f"{origin}/t1/missing.m4s")
    await get(f"{origin}/t1/master.m3u8", method="HEAD")
    status, headers, body = await get(f"{origin}/_/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'origin_requests_total{method="GET",status="200"} 1.0' in text
    assert 'origin_requests_total{method="GET",status="404"} 1.0' in text
    assert 'origin_requests_total{method="HEAD",status="200"} 1.0' in text
    not_found_page_bytes = len(b"not found\n")
    assert f"origin_response_bytes_total {100000 + not_found_page_bytes}.0" in text
    assert 'origin_storage_latency_seconds_count{op="open",outcome="ok"} 2.0' in text
    assert 'origin_storage_latency_seconds_count{op="open",outcome="NotFound"} 1.0' in text


async def test_one_access_log_line_per_request(origin: str, caplog: pytest.LogCaptureFixture, capsys):
    caplog.set_level(logging.INFO, logger="origin.access")
    await get(f"{origin}/t1/video/r1/00001.m4s", {"Range": "bytes=0-99"})
    await get(f"{origin}/t1/nope.m4s")
    lines = await read_access_lines(capsys, 2)
    assert len(lines) == 2
    assert {k: lines[0][k] for k in ("method", "path", "status", "bytes", "range")} == {
        "method": "GET", "path": "/t1/video/r1/00001.m4s", "status": "206", "bytes": "100", "range": "bytes=0-99"}
    assert float(lines[0]["duration_ms"]) >= 0
    assert (lines[1]["status"], lines[1]["range"]) == ("404", "-")


async def test_no_access_log_below_info(origin: str, caplog: pytest.LogCaptureFixture, capsys):
    caplog.set_level(logging.WARNING, logger="origin.access")  # --log-level warning
    await get(f"{origin}/t1/video/r1/00001.m4s")
    assert await read_access_lines(capsys, 1, timeout_s=1.0) == []


# ---------------------------------------------------------------- slow storage
async def test_storage_slower_than_its_timeout_is_503_with_retry_after(start_app, title_root: Path):
    """An S3 endpoint that accepts connections and never answers: the origin answers 503 in time."""
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    storage = open_storage(f"s3://bucket?endpoint=http://127.0.0.1:{port}&region=us-east-1")
    try:
        cfg = OriginConfig(storage_url=storage.url, port=0, storage_timeout_s=0.3, retry_after_s=9)
        origin = await start_app(cfg, storage)
        loop = asyncio.get_running_loop()
        started_s = loop.time()
        status, headers, _ = await get(f"{origin}/t1/video/r1/00001.m4s")
        assert (status, headers["Retry-After"]) == (503, "9")
        assert loop.time() - started_s < 3
        assert (await get(f"{origin}/_/health"))[0] == 503
    finally:
        await storage.close()
        silent.close()


# ---------------------------------------------------------------- clients that leave
LEAVING_BYTES = 24 * 1024 * 1024  # more than socket buffers hold: the body is still in flight


@pytest.mark.parametrize("backend", ["local", "memory"])
async def test_a_client_leaving_mid_body_is_one_quiet_log_line(backend: str, tmp_path: Path, start_origin,
                                                               caplog: pytest.LogCaptureFixture, capsys):
    data = bytes(LEAVING_BYTES)
    if backend == "local":
        (tmp_path / "t9").mkdir()
        (tmp_path / "t9" / "huge.m4s").write_bytes(data)
        url = str(tmp_path)
    else:
        url = "memory://origin-test-leaving"
        await open_storage(url).write("t9/huge.m4s", data)
    origin = await start_origin(OriginConfig(storage_url=url, port=0))
    host, port = origin.removeprefix("http://").rsplit(":", 1)
    with caplog.at_level(logging.DEBUG):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /t9/huge.m4s HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.read(65536)).startswith(b"HTTP/1.1 200")
        writer.transport.abort()
        access = await read_access_lines(capsys, 1)
    assert len(access) == 1
    assert access[0]["status"] == "200" and access[0]["aborted"] == "true"
    assert int(access[0]["bytes"]) < LEAVING_BYTES
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
