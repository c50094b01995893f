"""Which titles exist: ``{title}/title.json``, ``master.m3u8`` and ``manifest.mpd`` asked of an origin, kept briefly.

The origin of the client's region is asked first, then the others (a connection error, a timeout
or a 5xx moves to the next; a 404 is an answer). Answers are kept ``title_cache_s`` (a miss
``title_miss_cache_s``), and concurrent askers of one object share one request.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from ssl import SSLContext
from typing import Any, Callable, Sequence

import aiohttp

from manifests import Title, loads_title
from serverkit.tls import tls_failure

log = logging.getLogger(__name__)

TITLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class OriginUnavailable(Exception):
    """No origin answered (connection refused, timeout, 5xx): the service answers 503."""


@dataclass(frozen=True, kw_only=True)
class Fetched:
    """One object as an origin answered it; ``body`` is None for "no such object"."""

    body: bytes | None
    fetched_s: float


class TitleCatalog:
    """Cached, coalesced reads of small title objects from the origins."""

    def __init__(self, origins_by_region: dict[str, Sequence[str]], *, clock: Callable[[], float],
                 ttl_s: float, miss_ttl_s: float, timeout_s: float, ssl: SSLContext | None = None) -> None:
        self.origins_by_region = {r: tuple(u.rstrip("/") for u in urls) for r, urls in origins_by_region.items()}
        self.clock = clock
        self.ttl_s = ttl_s
        self.miss_ttl_s = miss_ttl_s
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._cache: dict[str, Fetched] = {}
        self._inflight: dict[str, asyncio.Future[Fetched]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._ssl = ssl  # verifies HTTPS origins (None: aiohttp's default, the system's store)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _origins(self, region: str) -> list[str]:
        first = list(self.origins_by_region.get(region, ()))
        rest = [u for r in sorted(self.origins_by_region) for u in self.origins_by_region[r] if u not in first]
        return first + rest

    async def title_json(self, title: str, region: str) -> dict[str, Any] | None:
        """The parsed ``title.json``, or None if the title does not exist (or is not valid JSON)."""
        fetched = await self._get(f"{title}/title.json", region)
        if fetched.body is None:
            return None
        try:
            doc = json.loads(fetched.body)
        except ValueError:
            log.warning("title.json is not JSON", extra={"kv": {"title": title}})
            return None
        return doc if isinstance(doc, dict) else None

    async def title(self, title: str, region: str) -> Title | None:
        """The title's ``title.json`` as a ``manifests.Title`` (``loads_title``), None if the title
        does not exist; TitleFormatError (one line) if it is not a vodstack title."""
        fetched = await self._get(f"{title}/title.json", region)
        return None if fetched.body is None else loads_title(fetched.body)

    async def master(self, title: str, region: str) -> str | None:
        """The stored multivariant playlist's text, or None if it does not exist."""
        fetched = await self._get(f"{title}/master.m3u8", region)
        return None if fetched.body is None else fetched.body.decode("utf-8", "replace")

    async def mpd(self, title: str, region: str) -> bytes | None:
        """The stored ``manifest.mpd``, or None if it does not exist (a title published before DASH)."""
        fetched = await self._get(f"{title}/manifest.mpd", region)
        return fetched.body

    async def _get(self, key: str, region: str) -> Fetched:
        now_s = self.clock()
        cached = self._cache.get(key)
        if cached is not None:
            ttl = self.ttl_s if cached.body is not None else self.miss_ttl_s
            if now_s - cached.fetched_s < ttl:
                return cached
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Fetched] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            fetched = await self._fetch(key, region)
            self._cache[key] = fetched
            future.set_result(fetched)
            return fetched
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            del self._inflight[key]

    async def _fetch(self, key: str, region: str) -> Fetched:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout,
                                                  connector=aiohttp.TCPConnector(ssl=self._ssl or True))
        problems = []
        for origin in self._origins(region):
            url = f"{origin}/{key}"
            try:
                async with self._session.get(url) as resp:
                    if resp.status == 200:
                        return Fetched(body=await resp.read(), fetched_s=self.clock())
                    if resp.status in (404, 410):
                        return Fetched(body=None, fetched_s=self.clock())
                    problems.append(f"{origin}: HTTP {resp.status}")
            except aiohttp.ClientSSLError as e:
                problems.append(f"{origin}: TLS: {tls_failure(e)}")
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                problems.append(f"{origin}: {type(e).__name__}")
        log.warning("no origin answered", extra={"kv": {"key": key, "tried": "; ".join(problems)}})
        raise OriginUnavailable("; ".join(problems) or "no origin configured")
