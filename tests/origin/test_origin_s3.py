"""The origin in front of S3 (a real moto_server over HTTP): headers, validators, ranges, outages."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from origin.server.config import OriginConfig

OBJECTS = {
    "t1/master.m3u8": b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nvideo/r1/index.m3u8\n",
    "t1/title.json": b'{"title": "t1"}',
    "t1/video/r1/00001.m4s": bytes(range(256)) * 1200,
    "t1/subs/en/00001.vtt": b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n",
}


def put_objects(s3_client: Any, bucket_url: str) -> None:
    bucket = urlsplit(bucket_url).netloc
    for key, data in OBJECTS.items():
        s3_client.put_object(Bucket=bucket, Key=key, Body=data)


async def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, Any, bytes]:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, headers=headers) as r:
            return r.status, r.headers.copy(), await r.read()


@pytest.fixture
async def s3_origin(s3_bucket_url: str, s3_client: Any, start_origin) -> str:
    put_objects(s3_client, s3_bucket_url)
    return await start_origin(OriginConfig(storage_url=s3_bucket_url, port=0, region="s3-test",
                                           storage_timeout_s=3, retry_after_s=4, chunk_bytes=64 * 1024))


@pytest.mark.parametrize("key, content_type, cache_control", [
    ("t1/master.m3u8", "application/vnd.apple.mpegurl", "public, max-age=2"),
    ("t1/title.json", "application/json", "public, max-age=2"),
    ("t1/video/r1/00001.m4s", "video/iso.segment", "public, max-age=31536000, immutable"),
    ("t1/subs/en/00001.vtt", "text/vtt; charset=utf-8", "public, max-age=31536000, immutable"),
])
async def test_s3_objects_with_type_and_caching(s3_origin: str, key: str, content_type: str, cache_control: str):
    status, headers, body = await get(f"{s3_origin}/{key}")
    assert (status, body) == (200, OBJECTS[key])
    assert headers["Content-Type"] == content_type
    assert headers["Cache-Control"] == cache_control
    assert headers["ETag"].startswith('"')


async def test_s3_validators_ranges_and_missing(s3_origin: str):
    url = f"{s3_origin}/t1/video/r1/00001.m4s"
    data = OBJECTS["t1/video/r1/00001.m4s"]
    _, headers, _ = await get(url)
    assert (await get(url, {"If-None-Match": headers["ETag"]}))[0] == 304
    assert (await get(url, {"If-Modified-Since": headers["Last-Modified"]}))[0] == 304
    status, h, body = await get(url, {"Range": "bytes=100000-200000"})
    assert (status, h["Content-Range"], body) == (206, f"bytes 100000-200000/{len(data)}", data[100000:200001])
    status, h, body = await get(url, {"Range": "bytes=-10"})
    assert (status, body) == (206, data[-10:])
    status, h, _ = await get(url, {"Range": f"bytes={len(data)}-"})
    assert (status, h["Content-Range"]) == (416, f"bytes */{len(data)}")
    status, h, body = await get(url, method="HEAD")
    assert (status, h["Content-Length"], body) == (200, str(len(data)), b"")
    assert (await get(f"{s3_origin}/t1/video/r1/00002.m4s"))[0] == 404


async def test_s3_outage_is_503_then_the_origin_recovers(s3_origin: str, s3_bucket_url: str, s3_client: Any,
                                                         moto_server: Any):
    url = f"{s3_origin}/t1/video/r1/00001.m4s"
    assert (await get(url))[0] == 200
    moto_server.stop()
    try:
        status, headers, _ = await get(url)
        assert (status, headers["Retry-After"]) == (503, "4")
        status, _, body = await get(f"{s3_origin}/_/health")
        health = json.loads(body)
        assert status == 503
        assert health["status"] == "unavailable" and health["region"] == "s3-test"
        assert health["storage"]["reachable"] is False and health["storage"]["error"]
        assert urlsplit(health["storage"]["url"]).netloc == urlsplit(s3_bucket_url).netloc
        assert (await get(f"{s3_origin}/t1/master.m3u8"))[0] == 503  # still up, still answering
    finally:
        moto_server.start()
    # moto forgot everything: the bucket and objects come back with the "repaired" service
    s3_client.create_bucket(Bucket=urlsplit(s3_bucket_url).netloc)
    put_objects(s3_client, s3_bucket_url)
    status, _, body = await get(url)
    assert (status, body) == (200, OBJECTS["t1/video/r1/00001.m4s"])
    assert (await get(f"{s3_origin}/_/health"))[0] == 200

