"""The origin's fault hook ``/_/delay``: admin key, delay before the first byte, health, bad values."""
from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from origin.server.config import OriginConfig
from origin.server.faults import MAX_DELAY_MS, admin_key_ok, parse_delay_ms

KEY = "k-origin"
SEGMENT = "t1/video/r1/00001.m4s"


@pytest.fixture
async def origin(title_root: Path, start_origin) -> str:
    return await start_origin(OriginConfig(storage_url=str(title_root), port=0, admin_key=KEY))


async def first_byte_s(url: str) -> tuple[int, float]:
    """Status and seconds from sending a GET to its first body byte (fresh connection)."""
    async with aiohttp.ClientSession() as http:
        start = time.perf_counter()
        async with http.get(url) as resp:
            await resp.content.readexactly(1)
            return resp.status, time.perf_counter() - start


async def post_delay(base: str, headers: dict[str, str] | None = None, **kw: object) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/_/delay", headers=headers, **kw) as resp:  # type: ignore[arg-type]
            return resp.status, await resp.json(content_type=None)


async def health(base: str) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/_/health") as resp:
            assert resp.status == 200
            return await resp.json()


@pytest.mark.parametrize("headers", [None, {"X-Admin-Key": "wrong"}, {"Authorization": "Bearer nope"}])
async def test_delay_needs_the_admin_key(origin: str, headers):
    status, doc = await post_delay(origin, headers, params={"ms": "300"})
    assert status == 403 and "X-Admin-Key" in doc["error"]
    assert (await health(origin))["delay_ms"] == 0


async def test_no_admin_key_configured_refuses_every_admin_call(title_root: Path, start_origin):
    base = await start_origin(OriginConfig(storage_url=str(title_root), port=0))
    status, doc = await post_delay(base, {"X-Admin-Key": ""}, params={"ms": "300"})
    assert status == 403 and "disabled" in doc["error"]


async def test_delay_holds_back_the_first_byte_until_cleared(origin: str):
    # a 1.5 s delay against a 0.75 s bound for "fast": wide apart, so a busy machine does not blur them
    _, fast_s = await first_byte_s(f"{origin}/{SEGMENT}")
    assert fast_s < 0.75
    status, doc = await post_delay(origin, {"X-Admin-Key": KEY}, params={"ms": "1500"})
    assert (status, doc) == (200, {"delay_ms": 1500, "previous_ms": 0})
    status, slow_s = await first_byte_s(f"{origin}/{SEGMENT}")
    assert status == 200 and slow_s >= 1.5
    status, missing_s = await first_byte_s(f"{origin}/t1/nothing-here.m4s")  # every object answer waits
    assert status == 404 and missing_s >= 1.5
    # the server's own paths do not wait, and report the delay
    start = time.perf_counter()
    assert (await health(origin))["delay_ms"] == 1500
    assert time.perf_counter() - start < 0.75
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{origin}/_/delay") as resp:
            assert await resp.json() == {"delay_ms": 1500}
    # cleared with a JSON body
    status, doc = await post_delay(origin, {"Authorization": f"Bearer {KEY}"}, json={"ms": 0})
    assert (status, doc) == (200, {"delay_ms": 0, "previous_ms": 1500})
    _, fast_again_s = await first_byte_s(f"{origin}/{SEGMENT}")
    assert fast_again_s < 0.75
    assert (await health(origin))["delay_ms"] == 0


@pytest.mark.parametrize("kw", [{"params": {"ms": "-1"}}, {"params": {"ms": "abc"}}, {"params": {"ms": "1.5"}},
                                {"params": {"ms": str(MAX_DELAY_MS + 1)}}, {"json": {"ms": True}},
                                {"json": {"delay": 5}}, {"data": "not json"}, {}])
async def test_bad_values_are_400_and_change_nothing(origin: str, kw):
    status, doc = await post_delay(origin, {"X-Admin-Key": KEY}, **kw)
    assert status == 400 and doc["error"]
    assert (await health(origin))["delay_ms"] == 0


@pytest.mark.parametrize("value, expected", [("0", 0), (" 250 ", 250), (500, 500), (40.0, 40),
                                             (MAX_DELAY_MS, MAX_DELAY_MS)])
def test_parse_delay_ms(value, expected):
    assert parse_delay_ms(value) == expected


@pytest.mark.parametrize("value", ["", "1e3", -5, 0.5, None, False, [1], MAX_DELAY_MS + 1])
def test_parse_delay_ms_refuses(value):
    with pytest.raises(ValueError):
        parse_delay_ms(value)


@pytest.mark.parametrize("expected, headers, ok", [
    ("k", {"X-Admin-Key": "k"}, True), ("k", {"Authorization": "Bearer k"}, True),
    ("k", {"X-Admin-Key": "K"}, False), ("k", {}, False), ("", {"X-Admin-Key": ""}, False),
])
def test_admin_key_ok(expected, headers, ok):
    assert admin_key_ok(expected, headers) is ok
