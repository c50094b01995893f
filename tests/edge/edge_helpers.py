"""Shared by the edge tests and their conftest: token keys and maker, a test upstream, metric reading."""
from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from aiohttp import web

from edge.tokens import sign_token
from httpsem.semantics import plan_response

KEYS = {"k1": "test-secret-1", "k2": "test-secret-2"}


def tok(title: str, ttl_s: int = 3600, kid: str = "k1") -> str:
    return sign_token(kid, KEYS[kid], title, int(time.time()) + ttl_s)


@dataclass
class TestUpstream:
    """An origin for tests: objects by key, the same HTTP semantics as the origin, and knobs."""

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


async def _serve(app: web.Application, runners: list[web.AppRunner]) -> str:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    runners.append(runner)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return f"http://127.0.0.1:{runner.addresses[0][1]}"


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
