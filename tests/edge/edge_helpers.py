"""Shared by the edge tests and their conftest: token keys and maker, our real origin as an upstream that
counts what it is asked, a fake upstream for the misbehaviour a real origin cannot show, metric reading."""
from __future__ import annotations

import asyncio
import collections
import os
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from aiohttp import web

from edge.tokens import sign_token
from httpsem.semantics import plan_response
from origin.server.app import build_app as build_origin_app
from origin.server.config import OriginConfig
from origin.storage.local import LocalStorage, etag_for

KEYS = {"k1": "test-secret-1", "k2": "test-secret-2"}


DATE = re.compile(rb"\r\nDate: [^\r]*")
#: CMSD-Dynamic's measured values (TCP_INFO of each connection, the response delay) differ per answer,
#: and two edges compared have their own names (CMSD's intermediary id)
CMSD_MEASURED = re.compile(rb";(etp|rtt|rd)=[0-9]+")
CMSD_NAMES = re.compile(rb'(n=|CMSD-Dynamic: )"[^"]*"')


def comparable(answer: bytes) -> bytes:
    """A raw HTTP answer without what differs between two edges giving the same answer: the Date, the
    CMSD measurements and the edge's name."""
    return CMSD_NAMES.sub(rb'\1"edge"', CMSD_MEASURED.sub(rb";\1=N", DATE.sub(b"", answer)))


def tok(title: str, ttl_s: int = 3600, kid: str = "k1") -> str:
    return sign_token(kid, KEYS[kid], title, int(time.time()) + ttl_s)


class RealOrigin:
    """Our origin (``origin.server.build_app``) over a ``LocalStorage`` folder, as an edge fills from it in
    production, with a middleware that records what it is asked (``requests`` per key, ``headers_seen``).

    ``put`` writes an object into the folder the way an ingest publishes one (a hidden temporary file,
    then a rename). The origin's open-file cache is off: tests change objects under it and expect the
    next request to see the change (with the cache on, the origin would serve a changed segment up to
    ``open_file_cache_media_valid_s`` late, as docs/origin.md says). ``gate``, when set to an Event, holds
    every request before the origin sees it. Slots: a knob only the fake has is an error here, not a no-op."""

    __slots__ = ("root", "objects", "requests", "headers_seen", "connections", "url", "cfg", "gate")

    def __init__(self, root: os.PathLike[str] | str, playlist_max_age_s: int = 1) -> None:
        self.root = os.fspath(root)
        os.makedirs(self.root, exist_ok=True)
        self.objects: dict[str, bytes] = {}
        self.requests: collections.Counter[str] = collections.Counter()
        self.headers_seen: list[dict[str, str]] = []
        self.connections: set[object] = set()  # the (host, port) of every client connection seen
        self.url = ""
        self.gate: asyncio.Event | None = None
        self.cfg = OriginConfig(storage_url=self.root, playlist_max_age_s=playlist_max_age_s,
                                open_file_cache_files=0)

    def put(self, key: str, data: bytes) -> None:
        """Publish ``data`` under ``key``, as an ingest does."""
        path = os.path.join(self.root, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        if key in self.objects:  # a changed object gets a later mtime, hence a new ETag, even within one tick
            old, new = os.stat(path), os.stat(tmp)
            os.utime(tmp, ns=(new.st_atime_ns, max(new.st_mtime_ns, old.st_mtime_ns + 1_000_000)))
        os.replace(tmp, path)
        self.objects[key] = data

    @property
    def etags(self) -> dict[str, str]:
        """The ETag the origin gives each object (nginx's, from the file's mtime and size)."""
        return {key: etag_for(os.stat(os.path.join(self.root, key))) for key in self.objects}

    def app(self) -> web.Application:
        @web.middleware
        async def record(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
            if not request.path.startswith("/_/"):
                self.requests[request.path.lstrip("/")] += 1
                self.headers_seen.append(dict(request.headers))
                self.connections.add(request.transport.get_extra_info("peername") if request.transport else None)
                if self.gate is not None:
                    await self.gate.wait()
            return await handler(request)

        app = build_origin_app(self.cfg, LocalStorage(self.root))
        app.middlewares.insert(0, record)
        return app


@dataclass
class TestUpstream:
    """A fake origin for the misbehaviour a real one cannot show on demand: answering 500 or a chosen
    status, hanging, cutting a body, trickling chunks, waiting on a gate. Objects by key, the same RFC 9110
    core as the origin for everything else."""

    __test__ = False
    objects: dict[str, bytes] = field(default_factory=dict)
    requests: collections.Counter = field(default_factory=collections.Counter)
    headers_seen: list[dict[str, str]] = field(default_factory=list)
    chunk_bytes: int = 64 * 1024
    delay_per_chunk_s: float = 0.0
    delay_headers_s: float = 0.0
    mode: str = "ok"  # ok | error (500) | hang (never answers) | cut (closes mid-body)
    etags: dict[str, str] = field(default_factory=dict)
    url: str = ""
    bytes_sent: int = 0
    playlist_max_age_s: int = 1
    finished_at: float = 0.0  # time.monotonic() when the last body finished
    connections: set = field(default_factory=set)  # the (host, port) of every client connection seen
    statuses: dict[str, int] = field(default_factory=dict)  # key -> status to answer instead (4xx, 5xx)
    cache_control: str = ""  # appended to the Cache-Control the plan gives (e.g. "stale-if-error=5")
    script: Callable[[str], str | int] | None = None  # per request: "ok", "hang" or a status to answer
    gate: asyncio.Event | None = None  # when set to an Event: every request waits for it before answering

    def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data
        self.etags[key] = f"v{abs(hash(data)) % 10**12:x}-{len(data)}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        if key.startswith("t/") and key.count("/") >= 3:  # called as a parent edge: /t/{token}/{key}
            key = key.split("/", 2)[2]
        self.requests[key] += 1
        self.connections.add(request.transport.get_extra_info("peername") if request.transport else None)
        self.headers_seen.append(dict(request.headers))
        if self.gate is not None:
            await self.gate.wait()
        if self.mode == "error":
            return web.Response(status=500)
        scripted = self.script(key) if self.script is not None else "ok"
        if self.mode == "hang" or scripted == "hang":
            await asyncio.sleep(3600)
        status = scripted if isinstance(scripted, int) else self.statuses.get(key)
        if status is not None:
            return web.Response(status=status, text=f"{status} from the test upstream\n")
        if self.delay_headers_s:
            await asyncio.sleep(self.delay_headers_s)
        data = self.objects.get(key)
        if data is None:
            return web.Response(status=404)
        plan = plan_response(request.method, request.headers, path=key, size_bytes=len(data),
                             etag=self.etags[key], last_modified_s=1_700_000_000,
                             playlist_max_age_s=self.playlist_max_age_s)
        headers = dict(plan.headers)
        if self.cache_control and "Cache-Control" in headers:
            headers["Cache-Control"] += f", {self.cache_control}"
        if not plan.send_body:
            return web.Response(status=plan.status, headers=headers)
        resp = web.StreamResponse(status=plan.status, headers=headers)
        await resp.prepare(request)
        pos = plan.start
        while pos < plan.end:
            if self.mode == "cut" and pos - plan.start >= self.chunk_bytes:
                request.transport.close()  # type: ignore[union-attr]
                return resp
            stop = min(pos + self.chunk_bytes, plan.end)
            await resp.write(data[pos:stop])
            self.bytes_sent += stop - pos
            pos = stop
            if self.delay_per_chunk_s:
                await asyncio.sleep(self.delay_per_chunk_s)
        await resp.write_eof()
        self.finished_at = time.monotonic()
        return resp


async def _serve(app: web.Application, runners: list[web.AppRunner], ssl_context: ssl.SSLContext | None = None) -> str:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    runners.append(runner)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    return f"{'https' if ssl_context else 'http'}://127.0.0.1:{runner.addresses[0][1]}"


class FakeClock:
    """A wall clock for an Edge (``Edge(cfg, clock=FakeClock())``) that moves only when told to."""

    def __init__(self, now_s: float | None = None) -> None:
        self.now_s = time.time() if now_s is None else now_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 if absent."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        n, _, rest = head.partition("{")
        if n != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()) or not want:
            total += float(value)
    return total


def wait_for(pred: Callable[[], bool], timeout_s: float = 5.0) -> Awaitable[None]:
    async def _w() -> None:
        t0 = time.monotonic()
        while not pred():
            if time.monotonic() - t0 > timeout_s:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.01)
    return _w()
