"""A server that answers at once with good playlists but trickles every ``.m4s`` body (one byte per
0.2 s): the player abandons the transfer as too slow (`client.giveup`), fails over to the next
pathway, and fails the session with "all pathways too slow" when there is no other.

The trickling server is a hostile aiohttp app on 127.0.0.1 port 0 over the synthetic title of
``player_store``; the good pathway is a real ``vodstack origin`` process (``origin_url``).
Assertions are on outcomes and order (which requests were cut short, which pathway served what),
never on elapsed seconds.
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from aiohttp import web

from client.context import SessionConfig
from client.devices import get_device
from client.errors import TransferTooSlow
from client.fetch import Fetcher, FetchTimeouts, TransferGuard
from client.giveup import GiveUpPolicy
from client.network import BandwidthSchedule, Clock, ShapedLink, UnshapedLink
from client.session import PlayerSession
from manifests.hls import Pathway, dumps_multivariant, multivariant_from_title
from manifests.title import loads_title

TRICKLE_EVERY_S = 0.2


class Trickler:
    """Serves ``store`` as an origin would, except that ``.m4s`` bodies come one byte at a time.
    ``cut`` records each trickled request's path and how many body bytes it got before the client
    hung up (the full size would mean the client waited the trickle out)."""

    def __init__(self, store: Path, master: str | None = None) -> None:
        self.store = store
        self.master = master
        self.started: list[str] = []
        self.trickled: list[tuple[str, int, int]] = []  # (path, bytes sent, size), once the client hung up

    async def all_hung_up(self) -> list[tuple[str, int, int]]:
        """Every trickled request, once each has seen its client hang up."""
        async with asyncio.timeout(30):
            while len(self.trickled) < len(self.started):
                await asyncio.sleep(0.05)
        return self.trickled

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{path:.+}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if path == "demo/steered.m3u8" and self.master is not None:
            return web.Response(text=self.master, content_type="application/vnd.apple.mpegurl")
        file = (self.store / path).resolve()
        if not file.is_relative_to(self.store.resolve()) or not file.is_file():
            raise web.HTTPNotFound()
        if not path.endswith(".m4s"):
            return web.FileResponse(file)
        size = file.stat().st_size
        resp = web.StreamResponse()
        resp.content_length = size
        resp.content_type = "video/iso.segment"
        await resp.prepare(request)
        self.started.append(path)
        sent = 0
        try:
            while sent < size:
                await resp.write(b"\0")
                sent += 1
                await asyncio.sleep(TRICKLE_EVERY_S)
        except ConnectionError:
            pass
        finally:  # also when the handler is cancelled on the hang-up
            self.trickled.append((path, sent, size))
        return resp


def session_for(http, url: str, **config) -> PlayerSession:
    cfg = SessionConfig(**{"duration_s": 8.0, "retry_rounds": 2, **config})
    return PlayerSession(http, master_url=url, device=get_device("laptop-chrome"), network=None, speed=4.0,
                         config=cfg)


async def test_a_trickling_only_pathway_fails_the_session_as_too_slow(serve, http, player_store):
    trickler = Trickler(player_store)
    base = await serve(trickler.app())
    session = session_for(http, f"{base}/demo/master.m3u8")
    report = await asyncio.wait_for(session.run(), 120)
    assert not report.ok
    assert report.error.startswith("all pathways too slow: "), report.error
    assert "00001.m4s: too slow: " in report.error and "start-up budget 10 s" in report.error
    assert report.startup_s is None and report.segments == []
    # the first video segment was asked for once per round (retry_rounds=2: three times), and every
    # trickled request was given up long before its body could have arrived
    trickled = await trickler.all_hung_up()
    video = [t for t in trickled if t[0].startswith("demo/video/")]
    assert len(video) == 3 and {p for p, _, _ in video} == {video[0][0]}, trickled
    assert all(sent < size // 100 for _, sent, size in trickled), trickled


async def test_a_trickling_first_pathway_fails_over_to_a_real_origin(serve, http, player_store, origin_url):
    trickler = Trickler(player_store)
    base = await serve(trickler.app())
    title = loads_title((player_store / "demo" / "title.json").read_text())
    trickler.master = dumps_multivariant(multivariant_from_title(title, pathways=[
        Pathway(id="slow", uri_prefix=f"{base}/demo/"), Pathway(id="origin", uri_prefix=f"{origin_url}/demo/")]))
    session = session_for(http, f"{base}/demo/steered.m3u8")
    report = await asyncio.wait_for(session.run(), 120)
    assert report.ok, report.error
    assert report.tracks["pathways"] == ["slow", "origin"]
    # the first segment failed over from the trickling pathway, and the report says why
    first = report.failovers[0]
    assert (first.from_pathway, first.to_pathway) == ("slow", "origin")
    assert first.cause == "TransferTooSlow" and ": too slow: " in first.error and ".m4s" in first.error
    assert {(f.from_pathway, f.to_pathway) for f in report.failovers} == {("slow", "origin")}
    assert [s.pathway for s in report.segments] == ["origin", "origin"]
    assert any("failover" in line and "too slow" in line for line in report.summary_lines())
    trickled = await trickler.all_hung_up()
    assert trickled and all(sent < size // 100 for _, sent, size in trickled), trickled


async def test_a_slow_viewer_link_is_not_a_slow_server(serve, http):
    """The rate judged is the server's: time the reader slept in its own shaped link is left out,
    so a 400 kb/s viewer fetching 100 kB (2 s) from a fast server with a 0.5 s budget keeps going,
    while the same guard gives up on a trickling server."""
    body = b"\0" * 100_000

    async def fast(request: web.Request) -> web.Response:
        return web.Response(body=body)

    async def trickle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = len(body)
        await resp.prepare(request)
        try:
            for _ in range(len(body)):
                await resp.write(b"\0")
                await asyncio.sleep(TRICKLE_EVERY_S)
        except ConnectionError:
            pass
        return resp

    app = web.Application()
    app.router.add_get("/fast.m4s", fast)
    app.router.add_get("/trickle.m4s", trickle)
    base = await serve(app)
    clock = Clock(1.0, min_timeout_real_s=0.0)
    # judged from the first chunk on (no grace): only the server's part of the time may count
    guard = TransferGuard(buffer_s=0.0, policy=GiveUpPolicy(stall_budget_s=0.5, grace_s=0.0))
    shaped = Fetcher(http, ShapedLink(BandwidthSchedule.constant(400_000, 0.05), clock), FetchTimeouts())
    result = await shaped.get(f"{base}/fast.m4s", max_bytes=10**6, guard=guard)
    assert result.size_bytes == len(body)
    assert result.end_s - result.start_s > guard.policy.stall_budget_s  # the link, not the server, took its time
    guard = TransferGuard(buffer_s=0.0, policy=GiveUpPolicy(stall_budget_s=0.5, grace_s=0.2))
    for fetcher in (shaped, Fetcher(http, UnshapedLink(clock), FetchTimeouts())):
        with pytest.raises(TransferTooSlow, match="too slow: ") as info:
            await fetcher.get(f"{base}/trickle.m4s", max_bytes=10**6, guard=guard)
    assert info.value.verdict.abandon and info.value.kind == "too_slow"


async def test_vodstack_play_fails_in_one_line_on_a_trickling_server(serve, player_store):
    from player_helpers import REPO

    base = await serve(Trickler(player_store).app())

    async def play(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "vodstack", "--log-level", "error", "play", f"{base}/demo/master.m3u8", "--quiet", "--speed", "4",
            "--duration", "8", *args, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 120)
        return proc.returncode, err.decode()

    code, err = await play("--stall-budget", "2")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("vodstack: error: playback failed: all pathways too slow: ")
    assert "past the 2.0 s allowed (start-up budget 2 s)" in err
    code, err = await play("--stall-budget", "0")
    assert code == 2 and err.strip() == "vodstack: error: --stall-budget must be positive"
