"""Outages as real processes (``vodstack origin`` over a storage folder, ``vodstack edge`` in front):

* the storage folder moved away: the origin answers 503 + ``Retry-After`` for every object (not 404), and
  the edge keeps serving its cached playlists, same bytes, from stale; the folder back, fresh again;
* the origin hung (``SIGSTOP``): one revalidation waits the upstream timeout behind a stale answer given
  after the stale deadline; it opens the origin's circuit, and the stale requests after it are answered
  without any upstream attempt, an uncached object with 504 from the breaker.

Assertions are on answers, counters and the order of events; polling loops have generous deadlines and
no test bounds elapsed time.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp

from edge_helpers import KEYS, metric, tok
from tests.procs import Server

PLAYLISTS = {f"t1/video/v{n}/index.m3u8": f"#EXTM3U\n#EXT-X-VERSION:7\n#rendition {n}\n".encode() for n in range(3)}


def _stack(tmp_path: Path, edge_toml: str, edge_flags: tuple[str, ...] = ()) -> tuple[Server, Server, Path]:
    store = tmp_path / "store"
    for key, data in PLAYLISTS.items():
        (store / key).parent.mkdir(parents=True, exist_ok=True)
        (store / key).write_bytes(data)
    logs = tmp_path / "logs"
    logs.mkdir()
    (tmp_path / "origin.toml").write_text("[origin]\nplaylist_max_age_s = 0\n")  # playlists stale at once
    (tmp_path / "edge.toml").write_text("[edge]\n" + edge_toml)
    origin = Server("origin", ["origin", "--storage", str(store), "--port", "0",
                               "--config", str(tmp_path / "origin.toml")], logs)
    try:
        edge = Server("edge", ["edge", "--origin", origin.url, "--port", "0", "--cache-dir", str(tmp_path / "cache"),
                               "--ram-mb", "16", "--disk-mb", "64", "--token-key", f"k1={KEYS['k1']}",
                               "--config", str(tmp_path / "edge.toml"), "--name", "e1", *edge_flags], logs)
    except BaseException:
        origin.stop()
        raise
    return origin, edge, store


async def _until(check, what: str, deadline_s: float = 20.0) -> None:
    """Poll ``await check()`` until it is true (a generous deadline, for a busy machine)."""
    end = time.monotonic() + deadline_s
    while not await check():
        if time.monotonic() > end:
            raise AssertionError(f"not reached: {what}")
        await asyncio.sleep(0.05)


async def _metrics(s: aiohttp.ClientSession, edge: Server) -> str:
    async with s.get(f"{edge.url}/_/metrics") as r:
        return await r.text()


async def test_storage_outage_is_503_at_the_origin_and_stale_at_the_edge(tmp_path):
    origin, edge, store = _stack(tmp_path, "stale_while_revalidate_s = 0\nbreaker_open_s = 0.2\n")
    try:
        async with aiohttp.ClientSession() as s:
            async def via_edge(key: str) -> tuple[int, bytes]:
                async with s.get(f"{edge.url}/t/{tok('t1')}/{key}") as r:
                    return r.status, await r.read()

            for key, data in PLAYLISTS.items():
                assert await via_edge(key) == (200, data)
            store.rename(tmp_path / "store-away")

            async def origin_unavailable() -> bool:  # (its open-file cache may answer for a second)
                for key in PLAYLISTS:
                    async with s.get(f"{origin.url}/{key}") as r:
                        if r.status != 503:
                            return False
                return True
            await _until(origin_unavailable, "the origin's objects 503")
            for key in PLAYLISTS:
                async with s.get(f"{origin.url}/{key}") as r:
                    assert r.status == 503 and int(r.headers["Retry-After"]) > 0
            async with s.get(f"{origin.url}/t1/never-was.m3u8") as r:
                assert r.status == 503  # missing or not: storage cannot tell now
            async with s.get(f"{origin.url}/_/health") as r:
                assert r.status == 503
            for _ in range(3):
                for key, data in PLAYLISTS.items():
                    assert await via_edge(key) == (200, data)  # stale, the very bytes
            text = await _metrics(s, edge)
            stale = metric(text, "vodstack_edge_stale_served_total", reason="upstream_error") + \
                metric(text, "vodstack_edge_stale_served_total", reason="circuit_open")
            assert stale >= 9 - len(PLAYLISTS)  # (the first ones may still have met the origin's file cache)
            assert metric(text, "vodstack_edge_requests_total", cache="negative") == 0
            assert metric(text, "vodstack_edge_requests_total", status="404") == 0
            revalidated = metric(text, "vodstack_edge_requests_total", cache="revalidated")

            (tmp_path / "store-away").rename(store)

            async def fresh_again() -> bool:
                for key, data in PLAYLISTS.items():
                    assert await via_edge(key) == (200, data)
                now = metric(await _metrics(s, edge), "vodstack_edge_requests_total", cache="revalidated")
                return now >= revalidated + len(PLAYLISTS)
            await _until(fresh_again, "the edge revalidating with the origin again")
            async with s.get(f"{origin.url}/{next(iter(PLAYLISTS))}") as r:
                assert r.status == 200
    finally:
        edge.stop()
        origin.stop()


async def test_a_hung_origin_opens_its_circuit_and_stale_answers_stop_waiting(tmp_path):
    """``kill -STOP`` the origin: a stale playlist is answered from the copy after the stale deadline while
    its revalidation waits the upstream timeout behind; an uncached object asked meanwhile waits that
    timeout once and gets 504. Those failures open the origin's circuit: the stale requests after them are
    answered from the copy and an uncached one with 504, all without an upstream attempt."""
    origin, edge, _ = _stack(tmp_path, "upstream_connect_timeout_s = 0.5\nupstream_read_timeout_s = 3.0\n",
                             ("--stale-while-revalidate", "0", "--stale-deadline", "0.2", "--breaker-open", "600",
                              "--breaker-failures", "1"))
    key, data = next(iter(PLAYLISTS.items()))
    label = f"origin:{origin.url}"
    stopped = False
    try:
        async with aiohttp.ClientSession() as s:
            async def via_edge(k: str) -> tuple[int, bytes]:
                async with s.get(f"{edge.url}/t/{tok('t1')}/{k}") as r:
                    return r.status, await r.read()

            assert await via_edge(key) == (200, data)
            os.killpg(origin.proc.pid, signal.SIGSTOP)
            stopped = True
            stale = asyncio.create_task(via_edge(key))
            uncached = asyncio.create_task(via_edge("t1/video/v9/first.m4s"))
            assert await stale == (200, data)  # from the copy after the stale deadline
            text = await _metrics(s, edge)
            assert metric(text, "vodstack_edge_stale_served_total", reason="deadline") == 1
            assert (await uncached)[0] == 504  # waited the upstream timeout: once

            async def both_failed() -> bool:
                return metric(await _metrics(s, edge), "vodstack_edge_fill_errors_total", upstream=label,
                              reason="timeout") == 2
            await _until(both_failed, "the revalidation and the uncached fill timing out")
            text = await _metrics(s, edge)
            assert metric(text, "vodstack_edge_breaker_transitions_total", upstream=label, phase="open") == 1
            attempts = metric(text, "vodstack_edge_upstream_attempts_total", upstream=label)
            for _ in range(4):
                assert await via_edge(key) == (200, data)  # from stale, no upstream attempt
            assert (await via_edge("t1/video/v9/second.m4s"))[0] == 504  # from the breaker
            text = await _metrics(s, edge)
            assert metric(text, "vodstack_edge_upstream_attempts_total", upstream=label) == attempts
            assert metric(text, "vodstack_edge_stale_served_total", reason="circuit_open") == 4
            assert metric(text, "vodstack_edge_upstream_skipped_total", upstream=label) == 5
            assert metric(text, "vodstack_edge_fill_errors_total", upstream=label) == 2  # no attempt since
    finally:
        if stopped:
            os.killpg(origin.proc.pid, signal.SIGCONT)
        edge.stop()
        origin.stop()
