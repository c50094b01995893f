"""Load and health: a bytes-per-second meter, the health snapshot, and heartbeats to the steering service."""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from typing import Any, Awaitable, Callable

import aiohttp

log = logging.getLogger(__name__)


class RateMeter:
    """Bytes per second over the last ``window_s`` seconds, in one-second buckets (clock injected)."""

    def __init__(self, window_s: int = 10) -> None:
        self.window_s = window_s
        self._buckets: deque[list[float]] = deque()  # [second, bytes]

    def add(self, nbytes: int, now_s: float) -> None:
        sec = int(now_s)
        if self._buckets and self._buckets[-1][0] == sec:
            self._buckets[-1][1] += nbytes
        else:
            self._buckets.append([sec, float(nbytes)])
            while self._buckets and self._buckets[0][0] <= sec - self.window_s:
                self._buckets.popleft()

    def rate(self, now_s: float) -> float:
        sec = int(now_s)
        total = sum(b for s, b in self._buckets if sec - self.window_s < s <= sec)
        return total / self.window_s


def ratio(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole > 0 else 0.0


async def heartbeat_loop(steering_url: str, interval_s: float,
                         snapshot: Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]],
                         session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    """POST ``snapshot()`` to ``{steering}/edges/heartbeat`` every ``interval_s`` until ``stop`` is set
    (then once more, so the steering service hears "draining"); a steering service that is down is
    logged once per outage and retried at the next beat."""
    url = steering_url.rstrip("/") + "/edges/heartbeat"
    failing = False
    while True:
        final = stop.is_set()
        try:
            body = snapshot()
            if inspect.isawaitable(body):  # a worker of several: the whole edge's figures
                body = await body
            async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=min(interval_s, 5))) as r:
                await r.read()
                if r.status >= 400:
                    raise aiohttp.ClientResponseError(r.request_info, (), status=r.status)
            if failing:
                log.info("steering reachable again", extra={"kv": {"url": url}})
            failing = False
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            if not failing:
                log.warning("heartbeat failed", extra={"kv": {"url": url, "error": type(e).__name__}})
            failing = True
        if final:
            return
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except asyncio.TimeoutError:
            pass
